//! Hand-written SVG charts: line charts (axes, ticks, a legend, one polyline per series, and
//! error bars where a series has them) and forest plots of ratios with their intervals.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (x, y) points, drawn in x order.
    pub points: Vec<(f64, f64)>,
    /// (x, low, high): an error bar at x (e.g. a 95 % interval).
    pub bars: Vec<(f64, f64, f64)>,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The start of a plot `WIDTH` wide: the `<svg>` element, a white background and the title
/// centred at `title_x`.
fn open_svg(height: f64, font_size: u32, title_x: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="{font_size}">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{title_x:.1}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        escape(title)
    );
    s
}

/// Escapes text for XML content and attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A compact tick label: 1.5k, 12k, 2.5M, 0.25.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (value, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if value.abs() >= 100.0 || value.fract().abs() < 1e-9 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{suffix}")
}

/// "Nice" linear ticks from 0 (or below) up to at least `max`.
fn linear_ticks(min: f64, max: f64) -> Vec<f64> {
    let lo = min.min(0.0);
    let span = (max - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let mut ticks = Vec::new();
    let mut t = start;
    while t < max + step * 0.999 {
        ticks.push(t);
        t += step;
        if ticks.len() > 20 {
            break;
        }
    }
    ticks
}

/// Powers of ten covering `min..=max` (both > 0).
fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let lo = min.max(f64::MIN_POSITIVE).log10().floor() as i32;
    let hi = max.max(f64::MIN_POSITIVE).log10().ceil() as i32;
    let hi = if hi == lo { lo + 1 } else { hi };
    (lo..=hi).map(|e| 10f64.powi(e)).collect()
}

struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    px_lo: f64,
    px_hi: f64,
}

impl Axis {
    fn map(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (
                v.max(f64::MIN_POSITIVE).log10(),
                self.lo.log10(),
                self.hi.log10(),
            )
        } else {
            (v, self.lo, self.hi)
        };
        let frac = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        self.px_lo + frac * (self.px_hi - self.px_lo)
    }
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let points = || chart.series.iter().flat_map(|s| s.points.iter().copied());
    let usable = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let xs: Vec<f64> = points()
        .map(|p| p.0)
        .filter(|&x| usable(x, chart.log_x))
        .collect();
    let bar_ends = chart
        .series
        .iter()
        .flat_map(|s| s.bars.iter().flat_map(|&(_, lo, hi)| [lo, hi]));
    let ys: Vec<f64> = points()
        .map(|p| p.1)
        .chain(bar_ends)
        .filter(|&y| usable(y, chart.log_y))
        .collect();
    let (x_min, x_max) = min_max(&xs).unwrap_or((1.0, 10.0));
    let (y_min, y_max) = min_max(&ys).unwrap_or((1.0, 10.0));

    // x ticks: the distinct data x values (e.g. connection counts), at most 12 of them.
    let mut x_ticks = xs.clone();
    x_ticks.sort_by(f64::total_cmp);
    x_ticks.dedup();
    if x_ticks.len() > 12 || x_ticks.len() < 2 {
        x_ticks = if chart.log_x {
            log_ticks(x_min, x_max)
        } else {
            linear_ticks(x_min, x_max)
        };
    }
    let y_ticks = if chart.log_y {
        log_ticks(y_min, y_max)
    } else {
        linear_ticks(y_min, y_max)
    };
    let (x_lo, x_hi) = bounds(&x_ticks, x_min, x_max);
    let (y_lo, y_hi) = bounds(&y_ticks, y_min, y_max);
    let x_axis = Axis {
        log: chart.log_x,
        lo: x_lo,
        hi: x_hi,
        px_lo: LEFT,
        px_hi: WIDTH - RIGHT,
    };
    let y_axis = Axis {
        log: chart.log_y,
        lo: y_lo,
        hi: y_hi,
        px_lo: HEIGHT - BOTTOM,
        px_hi: TOP,
    };

    let mut s = open_svg(HEIGHT, 12, (LEFT + WIDTH - RIGHT) / 2.0, &chart.title);
    // Grid and ticks.
    for &t in &y_ticks {
        let y = y_axis.map(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            short_number(t)
        );
    }
    for &t in &x_ticks {
        let x = x_axis.map(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 18.0,
            short_number(t)
        );
    }
    // Axes.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}" stroke="black"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b:.1}" stroke="black"/>"##,
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 18.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{y:.1}" text-anchor="middle" transform="rotate(-90 18 {y:.1})">{}</text>"#,
        escape(&chart.y_label),
        y = (TOP + HEIGHT - BOTTOM) / 2.0
    );
    // Series and legend.
    for (i, series) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| usable(x, chart.log_x) && usable(y, chart.log_y))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let coords: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_axis.map(x), y_axis.map(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            coords.join(" "),
            escape(&series.name)
        );
        for &(x, y) in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x_axis.map(x),
                y_axis.map(y)
            );
        }
        for &(x, lo, hi) in &series.bars {
            if !(usable(x, chart.log_x) && usable(lo, chart.log_y) && usable(hi, chart.log_y)) {
                continue;
            }
            let (px, y_lo, y_hi) = (x_axis.map(x), y_axis.map(lo), y_axis.map(hi));
            let _ = writeln!(
                s,
                r#"<path d="M{a:.1},{y_lo:.1}H{b:.1}M{px:.1},{y_lo:.1}V{y_hi:.1}M{a:.1},{y_hi:.1}H{b:.1}" stroke="{color}" stroke-width="1.5" fill="none"/>"#,
                a = px - 4.0,
                b = px + 4.0,
            );
        }
        legend_entry(&mut s, i, &series.name);
    }
    s.push_str("</svg>\n");
    s
}

/// One row of a forest plot: an estimate and its interval.
#[derive(Debug, Clone)]
pub struct ForestRow {
    pub label: String,
    /// Rows of one group share a colour and a legend entry.
    pub group: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// Ratios with their intervals, one row each, on a log axis with a line at 1.
#[derive(Debug, Clone)]
pub struct Forest {
    pub title: String,
    pub x_label: String,
    pub rows: Vec<ForestRow>,
}

const ROW_HEIGHT: f64 = 16.0;
const LABEL_WIDTH: f64 = 150.0;

/// Renders a forest plot as a standalone SVG document.
pub fn render_forest(forest: &Forest) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for r in &forest.rows {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    let rows: Vec<&ForestRow> = forest
        .rows
        .iter()
        .filter(|r| {
            [r.estimate, r.low, r.high]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0)
        })
        .collect();
    let ends: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.low, r.high])
        .chain([1.0])
        .collect();
    let (min, max) = min_max(&ends).unwrap_or((0.5, 2.0));
    // Symmetric around 1 on the log scale, with a margin.
    let reach = (max.ln().abs().max(min.ln().abs()) * 1.1).max(0.05_f64.ln_1p());
    let axis = Axis {
        log: true,
        lo: (-reach).exp(),
        hi: reach.exp(),
        px_lo: LEFT + LABEL_WIDTH,
        px_hi: WIDTH - RIGHT,
    };
    let height = TOP + BOTTOM + ROW_HEIGHT * rows.len().max(1) as f64;
    let mut s = open_svg(height, 11, WIDTH / 2.0, &forest.title);
    let bottom = height - BOTTOM;
    for tick in forest_ticks(axis.lo, axis.hi) {
        let x = axis.map(tick);
        let stroke = if (tick - 1.0).abs() < 1e-9 {
            "#555"
        } else {
            "#ddd"
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom:.1}" stroke="{stroke}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{tick}</text>"#,
            bottom + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (axis.px_lo + axis.px_hi) / 2.0,
        height - 18.0,
        escape(&forest.x_label)
    );
    for (i, r) in rows.iter().enumerate() {
        let color = COLORS[groups.iter().position(|g| *g == r.group).unwrap_or(0) % COLORS.len()];
        let y = TOP + ROW_HEIGHT * (i as f64 + 0.5);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/><circle cx="{:.1}" cy="{y:.1}" r="3.5" fill="{color}"><title>{} {}: {:.3} [{:.3}–{:.3}]</title></circle>"#,
            axis.px_lo - 8.0,
            y + 4.0,
            escape(&r.label),
            axis.map(r.low),
            axis.map(r.high),
            axis.map(r.estimate),
            escape(&r.group),
            escape(&r.label),
            r.estimate,
            r.low,
            r.high
        );
    }
    for (i, g) in groups.iter().enumerate() {
        legend_entry(&mut s, i, g);
    }
    s.push_str("</svg>\n");
    s
}

/// Round ratios between `lo` and `hi` (1 always among them).
fn forest_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const CANDIDATES: [f64; 21] = [
        0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 0.95, 0.98, 1.0, 1.02, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0,
        4.0, 5.0, 10.0, 20.0,
    ];
    let inside: Vec<f64> = CANDIDATES
        .iter()
        .copied()
        .filter(|&t| t >= lo && t <= hi)
        .collect();
    // At most seven: keep 1 and thin out the rest evenly.
    let step = inside.len().div_ceil(7).max(1);
    let one = inside
        .iter()
        .position(|&t| (t - 1.0).abs() < 1e-9)
        .unwrap_or(0);
    inside
        .iter()
        .enumerate()
        .filter(|(i, _)| i.abs_diff(one).is_multiple_of(step))
        .map(|(_, &t)| t)
        .collect()
}

/// The `i`th line of the legend right of the plot: a stroke of the `i`th colour and `name`.
fn legend_entry(s: &mut String, i: usize, name: &str) {
    let color = COLORS[i % COLORS.len()];
    let ly = TOP + 10.0 + i as f64 * 20.0;
    let lx = WIDTH - RIGHT + 15.0;
    let _ = writeln!(
        s,
        r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
        lx + 20.0,
        lx + 26.0,
        ly + 4.0,
        escape(name)
    );
}

fn min_max(v: &[f64]) -> Option<(f64, f64)> {
    let min = v.iter().copied().reduce(f64::min)?;
    let max = v.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

fn bounds(ticks: &[f64], min: f64, max: f64) -> (f64, f64) {
    let lo = ticks.first().copied().unwrap_or(min).min(min);
    let hi = ticks.last().copied().unwrap_or(max).max(max);
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        let cases = [
            (0.0, "0"),
            (2.5, "2.5"),
            (1500.0, "1.5k"),
            (12_000.0, "12k"),
            (2_500_000.0, "2.5M"),
            (0.25, "0.25"),
        ];
        for (v, expected) in cases {
            assert_eq!(short_number(v), expected);
        }
    }

    #[test]
    fn renders_one_polyline_per_series() {
        let chart = Chart {
            title: "a < b".into(),
            x_label: "connections".into(),
            y_label: "req/s".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series {
                    name: "x".into(),
                    points: vec![(1.0, 10.0), (10.0, 100.0)],
                    bars: vec![(1.0, 9.0, 11.0), (10.0, 0.0, 120.0)],
                },
                Series {
                    name: "y&z".into(),
                    points: vec![(1.0, 5.0), (10.0, 0.0)],
                    bars: Vec::new(),
                },
            ],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b") && svg.contains("y&amp;z"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // One error bar: the other reaches 0 on a log axis and is left out.
        assert_eq!(svg.matches("<path").count(), 1);
    }

    #[test]
    fn forest_plots_draw_one_interval_per_row_around_one() {
        let row = |label: &str, group: &str, estimate: f64| ForestRow {
            label: label.into(),
            group: group.into(),
            estimate,
            low: estimate * 0.97,
            high: estimate * 1.03,
        };
        let forest = Forest {
            title: "sqlite".into(),
            x_label: "ratio".into(),
            rows: vec![
                row("read c=1", "rocket", 0.8),
                row("read c=1", "actix", 1.1),
                row("read c=10", "actix", f64::NAN),
            ],
        };
        let svg = render_forest(&forest);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2, "the NaN row is left out");
        assert!(svg.contains(">1</text>"), "a tick at 1: {svg}");
        assert!(svg.contains(">rocket<") && svg.contains(">actix<"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(
            forest_ticks(0.5, 2.0).iter().filter(|&&t| t == 1.0).count(),
            1
        );
        assert!(forest_ticks(0.5, 2.0).len() <= 7);
    }
}

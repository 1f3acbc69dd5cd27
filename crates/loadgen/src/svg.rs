//! Hand-written SVG line charts: axes, ticks, a legend and one polyline per series.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (x, y) points, drawn in x order.
    pub points: Vec<(f64, f64)>,
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
    let ys: Vec<f64> = points()
        .map(|p| p.1)
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

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        escape(&chart.title)
    );
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
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = WIDTH - RIGHT + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(&series.name)
        );
    }
    s.push_str("</svg>\n");
    s
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
                },
                Series {
                    name: "y&z".into(),
                    points: vec![(1.0, 5.0), (10.0, 0.0)],
                },
            ],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b") && svg.contains("y&amp;z"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}

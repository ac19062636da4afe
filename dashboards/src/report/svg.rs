//! Inline SVG charts. Every chart is drawn in a 1000-unit-wide `viewBox` and scales to its box.
//! All text placed in a chart is escaped.

use std::fmt::Write;

use super::fmt::{count, esc, number, pct};

/// Width of every chart's coordinate system.
const W: f64 = 1000.0;

pub const BLUE: &str = "#2563eb";
pub const BLUE_LIGHT: &str = "#bfd3fb";
pub const GREY: &str = "#94a3b8";
pub const GRID: &str = "#e5e7eb";
pub const INK: &str = "#1f2937";
pub const MUTED: &str = "#64748b";

/// A round upper bound and tick step for an axis whose data reaches `max`.
pub fn nice_scale(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.25);
    }
    let rough = max / 4.0;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| s * 4.0 >= max)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn open(height: f64, label: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" font-family="inherit">"#,
        esc(label)
    )
}

/// Text placed at (x, y); `font` = (text-anchor, font size, fill, font weight).
fn text(out: &mut String, x: f64, y: f64, font: (&str, f64, &str, &str), s: &str) {
    let (anchor, size, fill, weight) = font;
    let _ = write!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="{fill}" font-weight="{weight}">{}</text>"#,
        esc(s)
    );
}

/// One bar of a horizontal bar chart.
pub struct HBar {
    /// Chinese label (may be empty).
    pub zh: String,
    /// English label.
    pub en: String,
    /// The bar's length in data units.
    pub value: f64,
    /// Text at the end of the bar.
    pub label: String,
    /// A marker (e.g. last period's value) drawn as a tick, in data units.
    pub marker: Option<f64>,
    /// Fill colour.
    pub color: &'static str,
}

/// A horizontal bar chart; `reference` draws a dashed vertical line (e.g. the organisation's value)
/// with its caption. `axis` formats tick labels.
pub fn hbars(
    aria: &str,
    bars: &[HBar],
    reference: Option<(f64, String)>,
    axis: &dyn Fn(f64) -> String,
    fixed_max: Option<f64>,
) -> String {
    let row = 34.0;
    let top = 30.0;
    let left = 230.0;
    // Values sit in their own column on the right, clear of bars, markers and the reference line.
    let right = 240.0;
    let rows_end = top + row * bars.len() as f64;
    // Room under the rows for the reference line's caption.
    let height = rows_end + if reference.is_some() { 30.0 } else { 12.0 };
    let data_max = bars
        .iter()
        .flat_map(|b| [Some(b.value), b.marker])
        .flatten()
        .chain(reference.as_ref().map(|r| r.0))
        .fold(0.0, f64::max);
    let (max, step) = match fixed_max {
        Some(m) => (m, m / 4.0),
        None => nice_scale(data_max),
    };
    let plot = W - left - right;
    let x = |v: f64| left + (v / max).clamp(0.0, 1.0) * plot;
    let mut out = open(height, aria);
    let mut t = 0.0;
    while t <= max + step * 1e-9 {
        let gx = x(t);
        let _ = write!(
            out,
            r#"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{:.1}" stroke="{GRID}" stroke-width="1"/>"#,
            top - 6.0,
            rows_end + 4.0
        );
        text(
            &mut out,
            gx,
            top - 12.0,
            ("middle", 13.0, MUTED, "400"),
            &axis(t),
        );
        t += step;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let cy = y + row / 2.0;
        if b.zh.is_empty() {
            text(
                &mut out,
                left - 12.0,
                cy + 5.0,
                ("end", 15.0, INK, "500"),
                &b.en,
            );
        } else {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="15" fill="{INK}"><tspan font-weight="600">{}</tspan><tspan fill="{MUTED}"> {}</tspan></text>"#,
                left - 12.0,
                cy + 5.0,
                esc(&b.zh),
                esc(&b.en)
            );
        }
        let w = (x(b.value) - left).max(if b.value > 0.0 { 2.0 } else { 0.0 });
        let _ = write!(
            out,
            r#"<rect x="{left}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="3" fill="{}"><title>{}</title></rect>"#,
            y + 6.0,
            row - 12.0,
            b.color,
            esc(&format!("{} {}: {}", b.zh, b.en, b.label))
        );
        if let Some(m) = b.marker {
            let mx = x(m);
            let _ = write!(
                out,
                r#"<line x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="{INK}" stroke-width="3"/>"#,
                y + 3.0,
                y + row - 3.0
            );
        }
        let _ = write!(
            out,
            r#"<line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="{GRID}" stroke-width="1" stroke-dasharray="2 3"/>"#,
            left + w + 4.0,
            W - right + 14.0
        );
        text(
            &mut out,
            W - right + 20.0,
            cy + 5.0,
            ("start", 14.0, INK, "600"),
            &b.label,
        );
    }
    if let Some((v, caption)) = reference {
        let rx = x(v);
        let _ = write!(
            out,
            r##"<line x1="{rx:.1}" y1="{:.1}" x2="{rx:.1}" y2="{:.1}" stroke="#dc2626" stroke-width="2" stroke-dasharray="6 4"/>"##,
            top - 4.0,
            rows_end + 8.0
        );
        text(
            &mut out,
            rx,
            rows_end + 24.0,
            ("middle", 13.0, "#dc2626", "600"),
            &caption,
        );
    }
    out.push_str("</svg>");
    out
}

/// One day of the daily-active chart.
pub struct Day {
    pub label: String,
    pub title: String,
    pub active: f64,
    pub headcount: f64,
    pub workday: bool,
}

/// Daily active users as bars (workdays dark, other days light) with headcount as a dashed step line.
pub fn daily_active(aria: &str, days: &[Day]) -> String {
    let height = 300.0;
    let (left, right, top, bottom) = (56.0, 16.0, 20.0, 42.0);
    let max_data = days
        .iter()
        .map(|d| d.active.max(d.headcount))
        .fold(0.0, f64::max);
    let (max, step) = nice_scale(max_data);
    let plot_h = height - top - bottom;
    let y = |v: f64| top + plot_h - (v / max).clamp(0.0, 1.0) * plot_h;
    let n = days.len().max(1) as f64;
    let slot = (W - left - right) / n;
    let mut out = open(height, aria);
    let mut t = 0.0;
    while t <= max + step * 1e-9 {
        let gy = y(t);
        let _ = write!(
            out,
            r#"<line x1="{left}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="{GRID}" stroke-width="1"/>"#,
            W - right
        );
        text(
            &mut out,
            left - 8.0,
            gy + 4.0,
            ("end", 13.0, MUTED, "400"),
            &count(t),
        );
        t += step;
    }
    let mut line = String::new();
    for (i, d) in days.iter().enumerate() {
        let x0 = left + slot * i as f64;
        let bw = slot * 0.7;
        let bx = x0 + (slot - bw) / 2.0;
        let by = y(d.active);
        let fill = if d.workday { BLUE } else { BLUE_LIGHT };
        let _ = write!(
            out,
            r#"<rect x="{bx:.1}" y="{by:.1}" width="{bw:.1}" height="{:.1}" rx="2" fill="{fill}"><title>{}</title></rect>"#,
            (top + plot_h - by).max(0.0),
            esc(&d.title)
        );
        let hy = y(d.headcount);
        let _ = write!(
            line,
            "{}{x0:.1},{hy:.1} L{:.1},{hy:.1} ",
            if i == 0 { "M" } else { "L" },
            x0 + slot
        );
        if days.len() <= 16 || i % 2 == 0 || i + 1 == days.len() {
            text(
                &mut out,
                x0 + slot / 2.0,
                height - bottom + 18.0,
                ("middle", 12.0, MUTED, "400"),
                &d.label,
            );
        }
    }
    if !line.is_empty() {
        let _ = write!(
            out,
            r#"<path d="{}" fill="none" stroke="{INK}" stroke-width="2" stroke-dasharray="6 4"/>"#,
            line.trim_end()
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{GREY}" stroke-width="1"/>"#,
        top + plot_h,
        W - right,
        top + plot_h
    );
    out.push_str("</svg>");
    out
}

/// One row of the heatmap.
pub struct HeatRow {
    pub zh: String,
    pub en: String,
    /// Counts for hours 0–23.
    pub hours: [u64; 24],
}

/// The app × local-hour heatmap with a count in every non-empty cell and the row total at the end.
pub fn heatmap(aria: &str, rows: &[HeatRow]) -> String {
    let (left, right, top) = (200.0, 70.0, 30.0);
    let cell_w = (W - left - right) / 24.0;
    let cell_h = 30.0;
    let height = top + cell_h * rows.len() as f64 + 44.0;
    let max = rows
        .iter()
        .flat_map(|r| r.hours.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut out = open(height, aria);
    for h in 0..24 {
        text(
            &mut out,
            left + cell_w * (h as f64 + 0.5),
            top - 10.0,
            ("middle", 12.0, MUTED, "400"),
            &format!("{h:02}"),
        );
    }
    text(
        &mut out,
        W - right / 2.0,
        top - 10.0,
        ("middle", 12.0, MUTED, "600"),
        "Σ",
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + cell_h * i as f64;
        if r.zh.is_empty() {
            text(
                &mut out,
                left - 10.0,
                y + cell_h / 2.0 + 5.0,
                ("end", 14.0, INK, "600"),
                &r.en,
            );
        } else {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="14" fill="{INK}"><tspan font-weight="600">{}</tspan><tspan fill="{MUTED}"> {}</tspan></text>"#,
                left - 10.0,
                y + cell_h / 2.0 + 5.0,
                esc(&r.zh),
                esc(&r.en)
            );
        }
        for (h, &c) in r.hours.iter().enumerate() {
            let x = left + cell_w * h as f64;
            let share = (c as f64 / max).sqrt();
            let fill = if c == 0 {
                "#f4f6f9".to_string()
            } else {
                blend(share)
            };
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="2" fill="{fill}"><title>{} {:02}:00 — {}</title></rect>"##,
                x + 1.0,
                y + 1.0,
                cell_w - 2.0,
                cell_h - 2.0,
                esc(&format!("{} {}", r.zh, r.en)),
                h,
                count(c as f64)
            );
            if c > 0 {
                let color = if share > 0.55 { "#ffffff" } else { INK };
                text(
                    &mut out,
                    x + cell_w / 2.0,
                    y + cell_h / 2.0 + 4.0,
                    ("middle", 10.0, color, "400"),
                    &compact(c),
                );
            }
        }
        let total: u64 = r.hours.iter().sum();
        text(
            &mut out,
            W - right / 2.0,
            y + cell_h / 2.0 + 5.0,
            ("middle", 13.0, INK, "600"),
            &compact(total),
        );
    }
    // Legend: light to dark.
    let ly = top + cell_h * rows.len() as f64 + 16.0;
    text(
        &mut out,
        left,
        ly + 12.0,
        ("start", 12.0, MUTED, "400"),
        "少 fewer",
    );
    for k in 0..10 {
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{ly:.1}" width="22" height="14" fill="{}"/>"#,
            left + 70.0 + 22.0 * k as f64,
            blend((k as f64 + 1.0) / 10.0)
        );
    }
    text(
        &mut out,
        left + 70.0 + 225.0,
        ly + 12.0,
        ("start", 12.0, MUTED, "400"),
        "多 more (opens per hour of day, local time)",
    );
    out.push_str("</svg>");
    out
}

/// Short count for small spaces: `762`, `1.2k`, `18k`.
fn compact(c: u64) -> String {
    if c < 1000 {
        c.to_string()
    } else if c < 10_000 {
        format!("{}k", number(c as f64 / 1000.0, 1))
    } else {
        format!("{}k", count(c as f64 / 1000.0))
    }
}

/// A colour between a very light and a deep blue; `t` in [0, 1].
fn blend(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let a = (0xe3_u8, 0xed_u8, 0xfc_u8);
    let b = (0x1e_u8, 0x3a_u8, 0x8a_u8);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// One column of a vertical bar chart.
pub struct VBar {
    pub zh: String,
    pub en: String,
    pub value: f64,
    pub color: &'static str,
}

/// A vertical bar chart with each bar's count and share of the total above it.
pub fn vbars(aria: &str, bars: &[VBar]) -> String {
    let height = 300.0;
    let (left, right, top, bottom) = (56.0, 16.0, 34.0, 56.0);
    let total: f64 = bars.iter().map(|b| b.value).sum();
    let (max, step) = nice_scale(bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let plot_h = height - top - bottom;
    let y = |v: f64| top + plot_h - (v / max).clamp(0.0, 1.0) * plot_h;
    let slot = (W - left - right) / bars.len().max(1) as f64;
    let mut out = open(height, aria);
    let mut t = 0.0;
    while t <= max + step * 1e-9 {
        let gy = y(t);
        let _ = write!(
            out,
            r#"<line x1="{left}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="{GRID}" stroke-width="1"/>"#,
            W - right
        );
        text(
            &mut out,
            left - 8.0,
            gy + 4.0,
            ("end", 13.0, MUTED, "400"),
            &count(t),
        );
        t += step;
    }
    for (i, b) in bars.iter().enumerate() {
        let x0 = left + slot * i as f64;
        let bw = slot * 0.62;
        let bx = x0 + (slot - bw) / 2.0;
        let by = y(b.value);
        let _ = write!(
            out,
            r#"<rect x="{bx:.1}" y="{by:.1}" width="{bw:.1}" height="{:.1}" rx="3" fill="{}"><title>{}</title></rect>"#,
            (top + plot_h - by).max(0.0),
            b.color,
            esc(&format!("{} {}: {}", b.zh, b.en, count(b.value)))
        );
        let share = if total > 0.0 {
            pct(b.value / total)
        } else {
            "—".into()
        };
        let cx = x0 + slot / 2.0;
        text(
            &mut out,
            cx,
            by - 18.0,
            ("middle", 14.0, INK, "700"),
            &count(b.value),
        );
        text(
            &mut out,
            cx,
            by - 4.0,
            ("middle", 12.0, MUTED, "400"),
            &share,
        );
        text(
            &mut out,
            cx,
            height - bottom + 20.0,
            ("middle", 14.0, INK, "600"),
            &b.zh,
        );
        text(
            &mut out,
            cx,
            height - bottom + 38.0,
            ("middle", 13.0, MUTED, "400"),
            &b.en,
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{GREY}" stroke-width="1"/>"#,
        top + plot_h,
        W - right,
        top + plot_h
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_scales() {
        assert_eq!(nice_scale(146.0), (150.0, 50.0));
        assert_eq!(nice_scale(8.0), (8.0, 2.0));
        assert_eq!(nice_scale(3811.0), (4000.0, 1000.0));
        assert_eq!(nice_scale(0.0), (1.0, 0.25));
    }

    #[test]
    fn chart_text_is_escaped() {
        let svg = hbars(
            "x",
            &[HBar {
                zh: String::new(),
                en: "<b>evil</b>".into(),
                value: 1.0,
                label: "1 & 2".into(),
                marker: None,
                color: BLUE,
            }],
            None,
            &|v| number(v, 0),
            None,
        );
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;b&gt;evil&lt;/b&gt;"));
        assert!(svg.contains("1 &amp; 2"));
    }
}

//! Text helpers: HTML escaping and numbers formatted for people.

/// Escapes text for HTML element content and (double- or single-quoted) attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Groups the digits of an integer by thousands: `18301` → `"18,301"`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number with `decimals` decimals and thousands separators: `(12345.678, 1)` → `"12,345.7"`.
pub fn number(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".to_string();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s.as_str(), None),
    };
    let int: i64 = int.parse().unwrap_or(0);
    let negative = x < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&thousands(int));
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A count: `18301.0` → `"18,301"`.
pub fn count(x: f64) -> String {
    number(x, 0)
}

/// A fraction as a percentage with one decimal: `0.71180` → `"71.2%"`.
pub fn pct(x: f64) -> String {
    format!("{}%", number(x * 100.0, 1))
}

/// A duration in seconds, for people: `"45 s"`, `"4 min 6 s"`, `"5 h 23 min"`, `"2 d 3 h"`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".to_string();
    }
    let s = seconds.round() as i64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        let (m, r) = (s / 60, s % 60);
        if r == 0 || m >= 10 {
            format!("{} min", (seconds / 60.0).round() as i64)
        } else {
            format!("{m} min {r} s")
        }
    } else if s < 48 * 3600 {
        let total_min = (seconds / 60.0).round() as i64;
        let (h, m) = (total_min / 60, total_min % 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    } else {
        let total_h = (seconds / 3600.0).round() as i64;
        let (d, h) = (total_h / 24, total_h % 24);
        if h == 0 {
            format!("{d} d")
        } else {
            format!("{d} d {h} h")
        }
    }
}

/// A duration given in hours (see [`duration`]).
pub fn hours(h: f64) -> String {
    duration(h * 3600.0)
}

/// The same duration in Traditional Chinese units: `"5 小時 23 分鐘"`.
pub fn duration_zh(seconds: f64) -> String {
    duration(seconds)
        .replace(" min", " 分鐘")
        .replace(" h", " 小時")
        .replace(" d", " 天")
        .replace(" s", " 秒")
}

/// English name of a month number (1–12).
pub fn month_name(m: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES
        .get((m as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(18301), "18,301");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(number(12345.678, 1), "12,345.7");
        assert_eq!(number(-0.04, 1), "0.0");
        assert_eq!(number(-1234.5, 2), "-1,234.50");
        assert_eq!(count(104.3), "104");
    }

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(pct(0.71180761860801), "71.2%");
        assert_eq!(pct(1.0), "100.0%");
        assert_eq!(pct(0.0), "0.0%");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(12.4), "12 s");
        assert_eq!(duration(245.984), "4 min 6 s");
        assert_eq!(duration(1849.5), "31 min");
        assert_eq!(hours(5.3847), "5 h 23 min");
        assert_eq!(hours(2.0), "2 h");
        assert_eq!(hours(22.985), "22 h 59 min");
        assert_eq!(hours(51.0), "2 d 3 h");
        assert_eq!(duration_zh(245.984), "4 分鐘 6 秒");
        assert_eq!(duration_zh(5.3847 * 3600.0), "5 小時 23 分鐘");
    }
}

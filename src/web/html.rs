//! Small helpers to write HTML by hand: escaping and the page frame.
//! Every value that came from outside goes through [`esc`].

use std::fmt::Write;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pages in the navigation bar: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Dashboard"),
    ("/querylog", "Query log"),
    ("/lists", "Lists"),
    ("/clients", "Clients"),
    ("/local", "Local DNS"),
    ("/settings", "Settings"),
    ("/system", "System"),
];

/// A full page. `csrf` is None on pages shown before login.
pub fn page(title: &str, active: &str, csrf: Option<&str>, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 2048);
    s.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    let _ = write!(s, "<title>{} · glory-hole</title>", esc(title));
    s.push_str("<link rel=\"stylesheet\" href=\"/assets/app.css\">");
    s.push_str("<link rel=\"icon\" href=\"/assets/icon.svg\" type=\"image/svg+xml\">");
    if let Some(t) = csrf {
        let _ = write!(s, "<meta name=\"csrf-token\" content=\"{}\">", esc(t));
    }
    s.push_str("<script src=\"/assets/app.js\" defer></script></head><body>");
    s.push_str("<header><a class=\"brand\" href=\"/\">glory-hole</a>");
    if csrf.is_some() {
        s.push_str("<nav>");
        for (href, label) in NAV {
            let cls = if *href == active { " class=\"on\"" } else { "" };
            let _ = write!(s, "<a href=\"{href}\"{cls}>{label}</a>");
        }
        let _ = write!(
            s,
            "<form method=\"post\" action=\"/logout\" class=\"inline\">\
             <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
             <button class=\"link\">Log out</button></form>",
            esc(csrf.unwrap_or(""))
        );
        s.push_str("</nav>");
    }
    s.push_str("</header><main>");
    let _ = write!(s, "<h1>{}</h1>", esc(title));
    s.push_str(body);
    s.push_str("</main></body></html>");
    s
}

/// "1.2 MiB" style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", secs % 60)
    }
}

/// Unix milliseconds as "YYYY-MM-DD HH:MM:SS" UTC (the page's JS rewrites
/// it to local time).
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(3725), "1h 2m");
    }
}

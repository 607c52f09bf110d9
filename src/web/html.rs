//! Writing HTML by hand: escaping, the page frame, and the small pieces
//! several pages show (cards, tables of counts, group checkboxes). Every
//! value that came from outside goes through [`esc`].
//! Not for: a page's own content (each feature module renders its page).

use super::backend::TopItem;
use axum::response::{Html, IntoResponse, Response};
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
    ("/dhcp", "DHCP"),
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

pub fn html(s: String) -> Response {
    Html(s).into_response()
}

/// An element the page's JS fills with a field's error message.
pub fn field_error(name: &str, msg: Option<&str>) -> String {
    format!(
        "<span class=\"field-error\" data-error-for=\"{name}\">{}</span>",
        esc(msg.unwrap_or(""))
    )
}

/// One figure with its label, as the dashboard and System page show it.
pub fn card(label: &str, value: &str, id: &str) -> String {
    format!(
        "<div class=\"card\" id=\"{id}\"><div class=\"n\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    )
}

/// A titled table of names and counts.
pub fn top_table(title: &str, id: &str, items: &[TopItem]) -> String {
    top_table_linked(title, id, items, None)
}

/// With `link`, each name links to the query log filtered by it.
pub fn top_table_linked(title: &str, id: &str, items: &[TopItem], link: Option<&str>) -> String {
    let mut s = format!(
        "<div><h2>{}</h2><div class=\"scroll\"><table id=\"{id}\"><tbody>",
        esc(title)
    );
    if items.is_empty() {
        s.push_str("<tr><td class=\"muted\">Nothing yet</td></tr>");
    }
    for it in items {
        let shown = match &it.client_name {
            Some(n) => client_text(&it.name, Some(n), it.client_name_source.as_deref()),
            None => esc(&it.name),
        };
        let name = match link {
            Some(param) => format!(
                "<a href=\"/querylog?{param}={}\">{shown}</a>",
                esc(&urlencode(&it.name)),
            ),
            None => shown,
        };
        let _ = write!(
            s,
            "<tr><td class=\"{}\">{name}</td><td class=\"num\"{}>{}{}</td></tr>",
            if it.client_name.is_some() {
                "client"
            } else {
                "mono"
            },
            if it.estimated {
                " title=\"estimate: the range reaches days stored without exact counts\""
            } else {
                ""
            },
            if it.estimated { "≈ " } else { "" },
            it.count
        );
    }
    s.push_str("</tbody></table></div></div>");
    s
}
/// A client as the pages show it: its device name, with the address
/// beside it and where the name came from on hover; the bare address when
/// it has no name. `app.js` (`clientCell`) writes the same for the live
/// log.
pub fn client_text(addr: &str, name: Option<&str>, source: Option<&str>) -> String {
    match name {
        Some(n) => format!(
            "<span class=\"device\" title=\"{} ({})\">{}</span> <span class=\"mono muted\">{}</span>",
            esc(addr),
            name_source(source.unwrap_or("")),
            esc(n),
            esc(addr)
        ),
        None => format!("<span class=\"mono\">{}</span>", esc(addr)),
    }
}

/// Where a device name came from, in words.
fn name_source(source: &str) -> &'static str {
    match source {
        "dhcp" => "name from a DHCP lease",
        "local" => "name from a local record",
        "ptr" => "name from the router",
        _ => "name",
    }
}

/// A query-string value, percent-encoded.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
/// One checkbox per group; ticked ones are sent as the `name` array.
pub fn group_boxes(name: &str, all: &[String], chosen: &[String]) -> String {
    let mut s = String::from("<span class=\"boxes\">");
    for g in all {
        let on = if chosen.contains(g) { " checked" } else { "" };
        let _ = write!(
            s,
            "<label class=\"check\"><input type=\"checkbox\" name=\"{name}\" value=\"{g}\" data-set{on}> {g}</label>",
            g = esc(g)
        );
    }
    s.push_str("</span>");
    s
}

pub fn groups_text(groups: &[String], none: &str) -> String {
    if groups.is_empty() {
        format!("<span class=\"muted\">{none}</span>")
    } else {
        esc(&groups.join(", "))
    }
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

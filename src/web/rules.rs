//! The allow and deny entries: `/api/v1/rules`, the one place an entry is
//! normalised ([`normalize_rule`]), and the rule sections the Lists page
//! shows.
//! Not for: matching names against rules (see `filter::rules`).

use super::State;
use super::html::{esc, field_error, group_boxes, groups_text};
use super::http::{ApiError, ApiResult, Body, edit, ok};
use super::scope::{self, RuleList, Scope};
use crate::config::Config;
use crate::syntax::RuleEntry;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new().route(
        "/api/v1/rules",
        get(rules).post(add_rule).delete(remove_rule),
    )
}

#[derive(Deserialize, Serialize)]
pub struct RuleIn {
    /// "allow" or "deny".
    pub list: String,
    pub entry: String,
    /// Groups the entry applies to; missing or empty: every client.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// The entry is a queried name to match exactly (the log's block and
    /// allow buttons): never read as a wildcard or a regex, whatever text
    /// a device put in its query.
    #[serde(default)]
    pub exact: bool,
}

/// An allow/deny entry as the filter reads it, in its stored spelling:
/// "d", "*.d" or "/regex/" (the config file's parser, `syntax::rule`).
pub fn normalize_rule(entry: &str) -> ApiResult<String> {
    rule_entry(entry).map(|r| r.to_string())
}

/// One entry parsed by `RuleEntry::parse`; the error names the `entry` field.
pub fn rule_entry(entry: &str) -> ApiResult<RuleEntry> {
    RuleEntry::parse(entry).map_err(|e| ApiError::field("entry", format!("entry: {e}")))
}

/// A queried name as an exact-name entry; text that is no domain name
/// (`/.*/`, `*.example`) is refused, never turned into a pattern.
pub fn exact_name(name: &str) -> ApiResult<RuleEntry> {
    name.parse::<crate::syntax::DomainName>()
        .ok()
        .filter(|n| !n.as_str().contains('*'))
        .map(RuleEntry::Exact)
        .ok_or_else(|| {
            ApiError::field(
                "entry",
                format!(
                    "entry: '{name}' is not a domain name, so it cannot be matched exactly \
                     (write a rule on the Lists page instead)"
                ),
            )
        })
}

fn rule_list(list: &str) -> ApiResult<RuleList> {
    RuleList::parse(list)
        .ok_or_else(|| ApiError::field("list", format!("list: '{list}': use allow or deny")))
}

/// The groups a form or script chose; empty means every client.
fn chosen_scope(c: &Config, groups: &Option<Vec<String>>) -> ApiResult<Scope> {
    let names = scope::check_groups(c, groups.as_deref().unwrap_or(&[]))
        .map_err(|e| ApiError::field("groups", e))?;
    Ok(if names.is_empty() {
        Scope::Everyone
    } else {
        Scope::Groups(names)
    })
}

fn scope_words(s: &Scope) -> String {
    match s {
        Scope::Everyone => "every client".into(),
        Scope::Groups(g) => format!(
            "group{} {}",
            if g.len() == 1 { "" } else { "s" },
            g.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

async fn rules(axum::extract::State(st): axum::extract::State<State>) -> Json<serde_json::Value> {
    let c = st.backend.config();
    Json(json!({
        "allow": c.filter.allow,
        "deny": c.filter.deny,
        "entries": scope::entries(&c),
    }))
}

/// Sets where the entry applies, and takes it off the other list for
/// those clients: "block this" from the log must win over an earlier
/// "allow this".
async fn add_rule(
    axum::extract::State(st): axum::extract::State<State>,
    Body(r): Body<RuleIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = rule_list(&r.list)?;
    let entry = if r.exact {
        exact_name(&r.entry)?.to_string()
    } else {
        normalize_rule(&r.entry)?
    };
    let mut words = String::new();
    edit(&st, |c| {
        let want = chosen_scope(c, &r.groups)?;
        scope::set_rule_scope(c, list, &entry, &want);
        if let Some(other) = scope::rule_scope(c, list.other(), &entry) {
            let left = other.minus(&want, &scope::group_names(c));
            scope::set_rule_scope(c, list.other(), &entry, &left);
        }
        words = scope_words(&want);
        Ok(())
    })?;
    Ok(ok(format!("{entry} added to {} for {words}", list.name())))
}

/// Removes the entry; with `groups`, only for those groups.
async fn remove_rule(
    axum::extract::State(st): axum::extract::State<State>,
    Body(r): Body<RuleIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = rule_list(&r.list)?;
    let entry = r.entry.trim().to_string();
    edit(&st, |c| {
        let Some(now) = scope::rule_scope(c, list, &entry) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("'{entry}' is not in the {} list", list.name()),
            ));
        };
        let take = chosen_scope(c, &r.groups)?;
        let left = now.minus(&take, &scope::group_names(c));
        if left == now {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("'{entry}' does not apply to {}", scope_words(&take)),
            ));
        }
        scope::set_rule_scope(c, list, &entry, &left);
        Ok(())
    })?;
    Ok(ok(format!("{entry} removed from {}", list.name())))
}

// ---- page section ----

pub fn rule_section(
    title: &str,
    list: &str,
    entries: &[scope::RuleEntry],
    all: &[String],
) -> String {
    let mut s = format!(
        "<div><h2>{}</h2><div class=\"scroll\"><table id=\"{list}-rules\"><thead><tr><th>Entry</th><th>Applies to</th><th></th></tr></thead><tbody>",
        esc(title)
    );
    let mine: Vec<&scope::RuleEntry> = entries.iter().filter(|e| e.list == list).collect();
    if mine.is_empty() {
        s.push_str("<tr><td colspan=\"3\" class=\"muted\">None</td></tr>");
    }
    for e in mine {
        let body = serde_json::json!({"list": list, "entry": e.entry}).to_string();
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{entry}</td><td>{groups}<details><summary>change</summary>\
             <form data-api=\"/api/v1/rules\" class=\"row\">\
             <input type=\"hidden\" name=\"list\" value=\"{list}\"><input type=\"hidden\" name=\"entry\" value=\"{entry}\">\
             {boxes}<button class=\"small\">Save</button>{err}<span class=\"status\"></span></form></details></td>\
             <td class=\"num\"><button class=\"small sec\" data-action=\"DELETE /api/v1/rules\" data-body=\"{body}\">remove</button></td></tr>",
            entry = esc(&e.entry),
            groups = groups_text(&e.groups, "every client"),
            boxes = group_boxes("groups", all, &e.groups),
            err = field_error("groups", None),
            body = esc(&body)
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><form data-api=\"/api/v1/rules\" class=\"row\" id=\"add-{list}\">\
         <input type=\"hidden\" name=\"list\" value=\"{list}\">\
         <label>Domain, *.domain or /regex/<input type=\"text\" name=\"entry\" required></label>\
         <button>Add</button>{}<span class=\"status\"></span>\
         <span class=\"wide\">For {}<span class=\"muted\"> (none ticked: every client)</span></span>{}</form></div>",
        field_error("entry", None),
        group_boxes("groups", all, &[]),
        field_error("groups", None)
    );
    s
}

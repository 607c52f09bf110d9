//! Clients and groups: `/api/v1/groups` and the page at `/clients`.
//! Not for: matching a client to its groups (see `filter::groups`).

use super::State;
use super::backend::TopKind;
use super::dashboard::parse_range;
use super::html::{client_text, esc, field_error, group_boxes, groups_text, html, page, top_table};
use super::http::{ApiError, ApiResult, Body, Ext, blocking, csrf, edit, ok};
use super::rules::rule_entry;
use super::scope;
use crate::config::{ClientGroup, Config};
use crate::syntax::RuleEntry;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route(
            "/api/v1/groups",
            get(groups).put(put_groups).post(add_group),
        )
        .route("/api/v1/groups/{name}", delete(remove_group))
        .route("/clients", get(clients_page))
}

pub fn valid_client(c: &str) -> bool {
    let is_mac = c.len() == 17
        && c.split(':').count() == 6
        && c.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    is_mac || c.parse::<crate::config::Cidr>().is_ok()
}

/// A group as the API shows and takes it. On input, fields left out stay
/// as they are (a new group starts with none).
#[derive(Deserialize, Serialize, Default)]
pub struct GroupIo {
    pub name: String,
    /// IPs, CIDRs or MAC addresses; none for `default` (everyone else).
    #[serde(default)]
    pub clients: Option<Vec<String>>,
    /// The blocklists that apply to this group's clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<Vec<String>>,
    /// Allow / deny entries for this group's clients only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
}

/// Every group, `default` first, with its lists and its own entries.
pub fn groups_of(c: &Config) -> Vec<GroupIo> {
    scope::group_names(c)
        .into_iter()
        .map(|name| {
            let g = c.filter.groups.iter().find(|g| g.name == name);
            GroupIo {
                clients: Some(g.map(|g| g.clients.clone()).unwrap_or_default()),
                lists: Some(scope::lists_of_group(c, &name)),
                allow: Some(g.map(|g| texts(&g.allow)).unwrap_or_default()),
                deny: Some(g.map(|g| texts(&g.deny)).unwrap_or_default()),
                name,
            }
        })
        .collect()
}

fn texts(rules: &[RuleEntry]) -> Vec<String> {
    rules.iter().map(RuleEntry::to_string).collect()
}

async fn groups(axum::extract::State(st): axum::extract::State<State>) -> Json<Vec<GroupIo>> {
    Json(groups_of(&st.backend.config()))
}

/// Entries for one group, each as the filter reads it; the error names
/// the field ("allow" or "deny") and the entry.
fn normalize_rules(field: &str, group: &str, entries: &[String]) -> ApiResult<Vec<RuleEntry>> {
    let mut out: Vec<RuleEntry> = Vec::new();
    for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let n = rule_entry(e).map_err(|err| {
            ApiError::field(
                field,
                format!(
                    "group '{group}': {field}: {}",
                    err.error.trim_start_matches("entry: ")
                ),
            )
        })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Writes `g` into `c` (replacing the group of that name), leaving out
/// fields as they are.
fn put_group(c: &mut Config, g: &GroupIo) -> ApiResult<()> {
    let name = g.name.trim().to_string();
    // Names travel in URLs (DELETE /api/v1/groups/{name}) and in forms.
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b))
    {
        return Err(ApiError::field(
            "name",
            "name: 1 to 64 letters, digits, spaces, '-', '_' or '.'",
        ));
    }
    let mut clients = None;
    if let Some(list) = &g.clients {
        let mut out = Vec::new();
        for cl in list.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            if !valid_client(cl) {
                return Err(ApiError::field(
                    "clients",
                    format!("group '{name}': '{cl}' is not an IP, CIDR or MAC address"),
                ));
            }
            out.push(cl.to_ascii_lowercase());
        }
        clients = Some(out);
    }
    if name == crate::config::DEFAULT_GROUP && clients.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::field(
            "clients",
            "clients: the default group holds every client not in another group; it takes none",
        ));
    }
    let allow = g
        .allow
        .as_ref()
        .map(|a| normalize_rules("allow", &name, a))
        .transpose()?;
    let deny = g
        .deny
        .as_ref()
        .map(|d| normalize_rules("deny", &name, d))
        .transpose()?;
    let i = match c.filter.groups.iter().position(|x| x.name == name) {
        Some(i) => i,
        None => {
            c.filter.groups.push(ClientGroup {
                name: name.clone(),
                ..ClientGroup::default()
            });
            c.filter.groups.len() - 1
        }
    };
    let cg = &mut c.filter.groups[i];
    if let Some(cl) = clients {
        cg.clients = cl;
    }
    if let Some(a) = allow {
        cg.allow = a;
    }
    if let Some(d) = deny {
        cg.deny = d;
    }
    if let Some(lists) = &g.lists {
        let mut set = std::collections::BTreeSet::new();
        for l in lists.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            if !c.filter.lists.iter().any(|x| x.name == l) {
                return Err(ApiError::field("lists", format!("lists: no list '{l}'")));
            }
            set.insert(l.to_string());
        }
        scope::set_group_lists(c, &name, &set).map_err(|e| ApiError::field("lists", e))?;
    }
    scope::tidy(c);
    Ok(())
}

/// Replaces every group; lists lose the groups that are gone.
async fn put_groups(
    axum::extract::State(st): axum::extract::State<State>,
    Body(groups): Body<Vec<GroupIo>>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut names = std::collections::HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        if !names.insert(g.name.trim().to_string()) {
            return Err(ApiError::field(
                "name",
                format!("groups[{i}].name: '{}' twice", g.name.trim()),
            ));
        }
    }
    edit(&st, |c| {
        let old = std::mem::take(&mut c.filter.groups);
        for g in &groups {
            // Rules a script leaves out stay those the group had.
            if let Some(o) = old.iter().find(|o| o.name == g.name.trim()) {
                c.filter.groups.push(o.clone());
            }
            put_group(c, g)?;
        }
        scope::forget_missing_groups(c);
        Ok(())
    })?;
    Ok(ok("groups saved"))
}

/// Adds a group, or changes the one with the same name.
async fn add_group(
    axum::extract::State(st): axum::extract::State<State>,
    Body(g): Body<GroupIo>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| put_group(c, &g))?;
    Ok(ok(format!("group '{}' saved", g.name.trim())))
}

async fn remove_group(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| {
        let before = c.filter.groups.len();
        c.filter.groups.retain(|g| g.name != name);
        if before == c.filter.groups.len() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no group '{name}'"),
            ));
        }
        scope::forget_missing_groups(c);
        Ok(())
    })?;
    Ok(ok(format!("group '{name}' removed")))
}

// ---- page ----

/// The form that adds a group or changes one (`g` filled in).
fn group_form(id: &str, g: Option<&GroupIo>, lists: &[String]) -> String {
    let name = g.map(|g| g.name.as_str()).unwrap_or("");
    let is_default = name == crate::config::DEFAULT_GROUP;
    let lines = |v: Option<&Vec<String>>| esc(&v.map(|v| v.join("\n")).unwrap_or_default());
    let name_field = match g {
        Some(_) => format!(
            "<input type=\"hidden\" name=\"name\" value=\"{}\">",
            esc(name)
        ),
        None => format!(
            "<label>Name<input type=\"text\" name=\"name\" required></label>{}",
            field_error("name", None)
        ),
    };
    let clients_field = if is_default {
        "<p class=\"muted\">Every client not in another group.</p>".to_string()
    } else {
        format!(
            "<label>Clients: IP, CIDR or MAC, one per line<textarea name=\"clients\" data-lines>{}</textarea></label>{}",
            lines(g.and_then(|g| g.clients.as_ref())),
            field_error("clients", None)
        )
    };
    let chosen = g.and_then(|g| g.lists.clone()).unwrap_or_default();
    let list_boxes = if lists.is_empty() {
        "<span class=\"muted\">No blocklists yet.</span>".to_string()
    } else {
        group_boxes("lists", lists, &chosen)
    };
    format!(
        "<form data-api=\"/api/v1/groups\" class=\"stack\" id=\"{id}\">{name_field}{clients_field}\
         <fieldset><legend>Blocklists for this group</legend>{list_boxes}{}</fieldset>\
         <label>Always allow for this group (domain, *.domain or /regex/, one per line)<textarea name=\"allow\" data-lines>{}</textarea></label>{}\
         <label>Always block for this group<textarea name=\"deny\" data-lines>{}</textarea></label>{}\
         <button>Save group</button><span class=\"status\"></span></form>",
        field_error("lists", None),
        lines(g.and_then(|g| g.allow.as_ref())),
        field_error("allow", None),
        lines(g.and_then(|g| g.deny.as_ref())),
        field_error("deny", None),
    )
}

async fn clients_page(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let mut s = String::new();
    let range = parse_range(Some("24h")).map(|r| r.1);
    let top = match range {
        Ok(r) => blocking(&st, move |st| st.backend.top(TopKind::Clients, r, 50)).await,
        Err(_) => Vec::new(),
    };
    s.push_str(&top_table(
        "Clients in the last 24 hours",
        "client-list",
        &top,
    ));
    s.push_str("<h2>Groups</h2><p class=\"muted\">Clients in a group get the blocklists and the allow and block entries chosen for that group; everyone else is in the default group. Entries on the Lists page marked “every client” apply to all groups.</p>\
                <div class=\"scroll\"><table id=\"groups\"><thead><tr><th>Group</th><th>Clients</th><th>Blocklists</th><th>Own entries</th><th></th></tr></thead><tbody>");
    let lists: Vec<String> = cfg.filter.lists.iter().map(|l| l.name.clone()).collect();
    for (i, g) in groups_of(&cfg).iter().enumerate() {
        let is_default = g.name == crate::config::DEFAULT_GROUP;
        let clients = if is_default {
            "<span class=\"muted\">everyone else</span>".to_string()
        } else {
            let shown: Vec<String> = g
                .clients
                .iter()
                .flatten()
                .map(|c| {
                    let n = st.backend.client_name(c);
                    client_text(
                        c,
                        n.as_ref().map(|n| n.name.as_str()),
                        n.as_ref().map(|n| n.source.as_str()),
                    )
                })
                .collect();
            shown.join(", ")
        };
        let mut own = Vec::new();
        for (word, v) in [("allow", &g.allow), ("block", &g.deny)] {
            for e in v.iter().flatten() {
                own.push(format!("{word} <span class=\"mono\">{}</span>", esc(e)));
            }
        }
        let remove = if is_default {
            String::new()
        } else {
            format!(
                "<button class=\"small sec\" data-action=\"DELETE /api/v1/groups/{n}\" data-confirm=\"Remove group {n}?\">remove</button>",
                n = esc(&g.name)
            )
        };
        let _ = write!(
            s,
            "<tr data-group=\"{n}\"><td>{n}</td><td>{clients}</td><td>{lists}</td><td>{own}</td><td>{remove}</td></tr>\
             <tr class=\"edit\"><td colspan=\"5\"><details><summary>change group {n}</summary>{form}</details></td></tr>",
            n = esc(&g.name),
            lists = groups_text(g.lists.as_deref().unwrap_or(&[]), "none"),
            own = if own.is_empty() {
                "<span class=\"muted\">none</span>".to_string()
            } else {
                own.join("<br>")
            },
            form = group_form(&format!("group-{i}"), Some(g), &lists),
        );
    }
    let _ = write!(
        s,
        "</tbody></table></div><h2>Add a group</h2>{}",
        group_form("add-group", None, &lists)
    );
    html(page("Clients and groups", "/clients", Some(csrf(&p)), &s))
}

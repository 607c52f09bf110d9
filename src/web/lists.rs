//! The blocklists: `/api/v1/lists` (add, change, remove, update now) and
//! the page at `/lists`, which also shows the allow and deny entries.
//! Not for: downloading or parsing lists (see `filter::update`).

use super::State;
use super::backend::ListView;
use super::html::{esc, field_error, group_boxes, html, page, time};
use super::http::{ApiError, ApiResult, Body, Ext, csrf, edit, ok};
use super::rules::rule_section;
use super::scope;
use crate::config::FilterList;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use std::fmt::Write;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/api/v1/lists", get(lists).post(add_list))
        .route("/api/v1/lists/update", post(update_lists))
        .route(
            "/api/v1/lists/{name}",
            delete(remove_list).patch(patch_list),
        )
        .route("/lists", get(lists_page))
}

async fn lists(axum::extract::State(st): axum::extract::State<State>) -> Json<Vec<ListView>> {
    Json(st.backend.lists())
}

#[derive(Deserialize)]
struct ListIn {
    name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    /// Groups the list applies to; empty = the default group.
    #[serde(default)]
    groups: Vec<String>,
}

fn yes() -> bool {
    true
}

async fn add_list(
    axum::extract::State(st): axum::extract::State<State>,
    Body(l): Body<ListIn>,
) -> ApiResult<Json<serde_json::Value>> {
    let name = l.name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::field(
            "name",
            "name: 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let url = l
        .url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let path = l
        .path
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    match (&url, &path) {
        (Some(u), None) => {
            let parsed =
                reqwest::Url::parse(u).map_err(|e| ApiError::field("url", format!("url: {e}")))?;
            crate::config::list_url_ok(&parsed)
                .map_err(|e| ApiError::field("url", format!("url: '{u}': {e}")))?;
        }
        (None, Some(p)) if p.starts_with('/') => {}
        (None, Some(_)) => return Err(ApiError::field("path", "path: must be absolute")),
        _ => {
            return Err(ApiError::field(
                "url",
                "url: give a URL or a file path (one of them)",
            ));
        }
    }
    edit(&st, |c| {
        let chosen = scope::check_groups(c, &l.groups).map_err(|e| ApiError::field("groups", e))?;
        // None ticked: the default group, as the config reads an empty list.
        let groups = scope::store_list_groups(&chosen).unwrap_or_default();
        if c.filter.lists.iter().any(|x| x.name == name) {
            return Err(ApiError::field(
                "name",
                format!("name: a list '{name}' exists already"),
            ));
        }
        c.filter.lists.push(FilterList {
            name: name.clone(),
            path: path.map(Into::into),
            url,
            enabled: l.enabled,
            match_mode: None,
            groups,
        });
        Ok(())
    })?;
    Ok(ok(format!("list '{name}' added")))
}

/// Fields left out stay as they are.
#[derive(Deserialize)]
struct ListPatch {
    #[serde(default)]
    enabled: Option<bool>,
    /// The groups the list applies to; empty: the default group.
    #[serde(default)]
    groups: Option<Vec<String>>,
}

async fn patch_list(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
    Body(p): Body<ListPatch>,
) -> ApiResult<Json<serde_json::Value>> {
    if p.enabled.is_none() && p.groups.is_none() {
        return Err(ApiError::field(
            "enabled",
            "enabled: give enabled and/or groups",
        ));
    }
    let mut said = Vec::new();
    edit(&st, |c| {
        let groups = match &p.groups {
            None => None,
            Some(g) => {
                let chosen = scope::check_groups(c, g).map_err(|e| ApiError::field("groups", e))?;
                Some(scope::store_list_groups(&chosen).unwrap_or_default())
            }
        };
        let l = c
            .filter
            .lists
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no list '{name}'")))?;
        if let Some(e) = p.enabled {
            l.enabled = e;
            said.push(if e { "enabled" } else { "disabled" }.to_string());
        }
        if let Some(g) = groups {
            l.groups = g;
            said.push(format!("for {}", scope::list_groups(l).join(", ")));
        }
        Ok(())
    })?;
    Ok(ok(format!("list '{name}' {}", said.join(" "))))
}

async fn remove_list(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    edit(&st, |c| {
        let before = c.filter.lists.len();
        c.filter.lists.retain(|l| l.name != name);
        if c.filter.lists.len() == before {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no list '{name}'"),
            ));
        }
        Ok(())
    })?;
    Ok(ok(format!("list '{name}' removed")))
}

async fn update_lists(
    axum::extract::State(st): axum::extract::State<State>,
) -> ApiResult<Response> {
    st.backend.update_lists().map_err(ApiError::unavailable)?;
    Ok((StatusCode::ACCEPTED, ok("list update started")).into_response())
}

// ---- page ----

async fn lists_page(
    axum::extract::State(st): axum::extract::State<State>,
    Extension(p): Ext,
) -> Response {
    let cfg = st.backend.config();
    let all_groups = scope::group_names(&cfg);
    let mut s = String::new();
    s.push_str("<h2>Is this domain blocked?</h2>\
        <form data-api=\"/api/v1/explain\" data-method=\"GET\" data-done=\"show\" class=\"row\" id=\"explain\">\
        <label>Domain<input type=\"text\" name=\"domain\" required placeholder=\"ads.example.com\"></label>\
        <label>For client (optional; its groups decide)<input type=\"text\" name=\"client\" placeholder=\"192.168.1.50\"></label>\
        <button>Check</button><span class=\"status\"></span><div class=\"result\"></div></form>");
    s.push_str("<h2>Blocklists</h2><div class=\"scroll\"><table id=\"lists\"><thead><tr><th>Name</th><th class=\"hide-sm\">Source</th><th class=\"num\">Domains</th><th>Updated</th><th>Groups</th><th></th></tr></thead><tbody>");
    let all = st.backend.lists();
    if all.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"muted\">No lists yet. Add one below.</td></tr>");
    }
    for l in &all {
        let groups = cfg
            .filter
            .lists
            .iter()
            .find(|c| c.name == l.name)
            .map(scope::list_groups)
            .unwrap_or_default();
        let toggle = serde_json::json!({"enabled": !l.enabled}).to_string();
        let _ = write!(
            s,
            "<tr><td>{name}{err}</td><td class=\"mono hide-sm\">{src}</td><td class=\"num\">{n}</td><td>{upd}</td>\
             <td>{groups_text}<details><summary>change</summary>\
             <form data-api=\"/api/v1/lists/{name_url}\" data-method=\"PATCH\" class=\"row\">{boxes}\
             <button class=\"small\">Save</button>{gerr}<span class=\"status\"></span></form></details></td>\
             <td><button class=\"small sec\" data-action=\"PATCH /api/v1/lists/{name_url}\" data-body=\"{toggle}\">{label}</button> \
             <button class=\"small sec\" data-action=\"DELETE /api/v1/lists/{name_url}\" data-confirm=\"Remove list {name}?\">remove</button></td></tr>",
            name = esc(&l.name),
            name_url = esc(&l.name),
            err = l
                .error
                .as_ref()
                .map(|e| format!("<br><span class=\"err\">{}</span>", esc(e)))
                .unwrap_or_default(),
            src = esc(&l.source),
            n = l.domains.map(|d| d.to_string()).unwrap_or("–".into()),
            upd = l
                .updated_ms
                .map(|m| format!("<time data-ms=\"{m}\">{}</time>", time(m)))
                .unwrap_or("never".into()),
            groups_text = esc(&groups.join(", ")),
            boxes = group_boxes("groups", &all_groups, &groups),
            gerr = field_error("groups", None),
            toggle = esc(&toggle),
            label = if l.enabled { "disable" } else { "enable" },
        );
    }
    s.push_str("</tbody></table></div>");
    let _ = write!(
        s,
        "<p><button class=\"sec\" data-action=\"POST /api/v1/lists/update\" data-done=\"none\">Update all lists now</button></p>\
         <form data-api=\"/api/v1/lists\" class=\"row\" id=\"add-list\">\
         <label>Name<input type=\"text\" name=\"name\" required></label>{}\
         <label>URL<input type=\"text\" name=\"url\" placeholder=\"https://…\" required></label>{}\
         <button>Add list</button><span class=\"status\"></span>\
         <span class=\"wide\">For {}<span class=\"muted\"> (none ticked: the default group)</span></span>{}</form>",
        field_error("name", None),
        field_error("url", None),
        group_boxes(
            "groups",
            &all_groups,
            &[crate::config::DEFAULT_GROUP.to_string()]
        ),
        field_error("groups", None)
    );
    let entries = scope::entries(&cfg);
    s.push_str("<div class=\"two\">");
    s.push_str(&rule_section(
        "Always allow",
        "allow",
        &entries,
        &all_groups,
    ));
    s.push_str(&rule_section("Always block", "deny", &entries, &all_groups));
    s.push_str("</div>");
    html(page("Lists", "/lists", Some(csrf(&p)), &s))
}

//! The running server as the web UI's [`Backend`]: configuration changes go
//! through `App::edit`; figures come from the DNS engine, the filter
//! service and the query log. Translating their types to the page's
//! (`...View`) is all this file does.
//! Not for: anything the web layer decides (routes, checks, wording).

use super::App;
use crate::config::Config;
use crate::querylog::{qtype_code, qtype_name, source_of};
use crate::web::backend::*;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

impl App {
    fn row(&self, r: &crate::querylog::LogRow, cfg: &Config) -> LogRowView {
        let filter = self.filter.current().load_full();
        let (client_name, client_name_source) = self.client_name(&r.client).map(split).unzip();
        LogRowView {
            time_ms: r.time_ms,
            client: r.client.clone(),
            client_name,
            client_name_source,
            domain: r.domain.clone(),
            qtype: qtype_name(r.qtype),
            status: r.status.as_str().to_string(),
            rcode: r.rcode,
            upstream: r
                .upstream
                .and_then(|i| cfg.dns.upstreams.get(i as usize))
                .map(|u| u.to_string()),
            latency_us: r.latency_us,
            reason: r.reason.map(|x| {
                filter.describe(crate::events::Reason {
                    kind: x.kind,
                    id: x.id,
                    cname_depth: x.cname_depth,
                })
            }),
        }
    }
}

fn split(n: ClientNameView) -> (String, String) {
    (n.name, n.source)
}

fn range_ok<T>(r: anyhow::Result<T>, what: &str) -> Option<T> {
    r.map_err(|e| tracing::warn!("web: {what}: {e:#}")).ok()
}

impl Backend for App {
    fn config(&self) -> Arc<Config> {
        App::config(self)
    }
    fn edit(
        &self,
        change: &mut dyn FnMut(&mut Config) -> Result<(), String>,
    ) -> Result<(), String> {
        App::edit(self, change)
    }
    fn data_dir(&self) -> PathBuf {
        App::data_dir(self)
    }
    fn dhcp_status(&self) -> crate::dhcp::Status {
        (*self.dhcp.status()).clone()
    }
    fn dhcp_leases(&self) -> Arc<Vec<crate::dhcp::LeaseInfo>> {
        self.dhcp.leases().snapshot()
    }

    fn has_querylog(&self) -> bool {
        App::config(self).querylog.enabled
    }

    fn summary(&self, r: TimeRange) -> Option<SummaryView> {
        let s = range_ok(self.querylog.summary(r.from_ms, r.to_ms), "summary")?;
        Some(SummaryView {
            total: s.total,
            blocked: s.blocked,
            cached: s.cached,
            unique_clients: s.unique_clients,
            unique_domains: s.unique_domains,
        })
    }

    fn time_series(&self, r: TimeRange, n: u32) -> Vec<BucketView> {
        let q = &self.querylog;
        range_ok(q.time_series(r.from_ms, r.to_ms, n as usize), "time series")
            .unwrap_or_default()
            .into_iter()
            // The log counts cached answers as allowed; the chart stacks them apart.
            .map(|b| BucketView {
                start_ms: b.start_ms,
                allowed: b.allowed.saturating_sub(b.cached),
                blocked: b.blocked,
                cached: b.cached,
            })
            .collect()
    }

    fn top(&self, kind: TopKind, r: TimeRange, n: u32) -> Vec<TopItem> {
        let q = &self.querylog;
        let (from, to, n) = (r.from_ms, r.to_ms, n as usize);
        let res = match kind {
            TopKind::Domains => q
                .top_domains(from, to, n, false)
                .map(|t| (t.items, t.estimated)),
            TopKind::Blocked => q
                .top_domains(from, to, n, true)
                .map(|t| (t.items, t.estimated)),
            TopKind::Clients => q.top_clients(from, to, n).map(|v| (v, false)),
        };
        let (items, estimated) = range_ok(res, "top").unwrap_or_default();
        items
            .into_iter()
            .map(|(name, count)| {
                let mut item = TopItem::new(name, count);
                item.estimated = estimated;
                if kind == TopKind::Clients
                    && let Some(n) = self.client_name(&item.name)
                {
                    (item.client_name, item.client_name_source) = (Some(n.name), Some(n.source));
                }
                item
            })
            .collect()
    }

    fn slowest(&self, r: TimeRange, n: u32) -> SlowestView {
        let q = &self.querylog;
        let cfg = App::config(self);
        let ms = |us: f64| us / 1000.0;
        SlowestView {
            domains: range_ok(q.slowest_domains(r.from_ms, r.to_ms, n as usize), "slowest")
                .unwrap_or_default()
                .into_iter()
                .map(|(name, max_us)| SlowDomainView {
                    name,
                    max_ms: ms(f64::from(max_us)),
                })
                .collect(),
            upstreams: range_ok(q.upstream_latency(r.from_ms, r.to_ms), "upstream latency")
                .unwrap_or_default()
                .into_iter()
                .map(|u| UpstreamLatencyView {
                    name: cfg
                        .dns
                        .upstreams
                        .get(usize::from(u.upstream))
                        .map_or_else(|| format!("upstream {}", u.upstream), |x| x.to_string()),
                    answers: u.answers,
                    avg_ms: ms(u.avg_us),
                    max_ms: ms(f64::from(u.max_us)),
                })
                .collect(),
        }
    }

    /// The first page and the live tail merge in the RAM ring, so queries
    /// show before they reach flash; older pages come from disk. One disk
    /// search per page, no count: the cursor says whether there is more.
    fn search(&self, q: &LogSearch) -> LogPageView {
        let log = &self.querylog;
        let cfg = App::config(self);
        let limit = q.limit.unwrap_or(100) as usize;
        let status = q.status.as_deref().and_then(source_of);
        let qtype = q.qtype.as_deref().and_then(qtype_code);
        let cursor = q.cursor.or(q.before_ms.map(crate::querylog::key_of));
        let matches = |r: &crate::querylog::LogRow| {
            q.domain
                .as_ref()
                .is_none_or(|d| r.domain.contains(d.as_str()))
                && q.client.as_ref().is_none_or(|c| r.client == *c)
                && status.is_none_or(|s| r.status == s)
                && qtype.is_none_or(|t| r.qtype == t)
                && q.from_ms.is_none_or(|f| r.time_ms >= f)
                && q.to_ms.is_none_or(|t| r.time_ms < t)
                && q.after_ms.is_none_or(|a| r.time_ms > a)
        };
        let mut rows: Vec<crate::querylog::LogRow> = Vec::new();
        if cursor.is_none() {
            rows.extend(
                log.recent(usize::MAX)
                    .into_iter()
                    .filter(|r| matches(r))
                    .take(limit),
            );
        }
        let mut next_cursor = None;
        if q.after_ms.is_none() {
            let dq = crate::querylog::LogQuery {
                from_ms: q.from_ms,
                to_ms: q.to_ms,
                domain: q.domain.clone(),
                client: q.client.clone(),
                status,
                qtype,
                cursor,
                limit,
            };
            if let Some(page) = range_ok(log.search(&dq), "log search") {
                next_cursor = page.next_cursor;
                let seen: std::collections::HashSet<(i64, String, String)> = rows
                    .iter()
                    .map(|r| (r.time_ms, r.client.clone(), r.domain.clone()))
                    .collect();
                rows.extend(
                    page.rows.into_iter().filter(|r| {
                        !seen.contains(&(r.time_ms, r.client.clone(), r.domain.clone()))
                    }),
                );
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
        if rows.len() > limit {
            // Rows from the ring pushed disk rows off this page: go on
            // from the oldest shown millisecond, whole, so a row sharing
            // it with the first one cut is not skipped.
            let cut_ms = rows[limit].time_ms;
            rows.truncate(limit);
            let whole = rows.iter().take_while(|r| r.time_ms != cut_ms).count();
            if whole > 0 {
                rows.truncate(whole);
            }
            next_cursor = rows.last().map(|r| crate::querylog::key_of(r.time_ms));
        }
        LogPageView {
            rows: rows.iter().map(|r| self.row(r, &cfg)).collect(),
            next_cursor,
        }
    }

    fn export(
        &self,
        q: &LogSearch,
        format: crate::querylog::ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, String> {
        let cfg = App::config(self);
        let filter = self.filter.current().load_full();
        let names = self.names.clone();
        let labels = crate::querylog::Labels {
            upstreams: cfg.dns.upstreams.iter().map(|u| u.to_string()).collect(),
            client_name: Box::new(move |c| names.name_of(c).map(|n| n.name.to_string())),
            rule: Box::new(move |x| {
                filter.describe(crate::events::Reason {
                    kind: x.kind,
                    id: x.id,
                    cname_depth: x.cname_depth,
                })
            }),
        };
        let dq = crate::querylog::LogQuery {
            from_ms: match (q.from_ms, q.after_ms) {
                (Some(f), Some(a)) => Some(f.max(a + 1)),
                (f, a) => f.or(a.map(|a| a + 1)),
            },
            to_ms: q.to_ms,
            domain: q.domain.clone(),
            client: q.client.clone(),
            status: q.status.as_deref().and_then(source_of),
            qtype: q.qtype.as_deref().and_then(qtype_code),
            cursor: q.cursor.or(q.before_ms.map(crate::querylog::key_of)),
            limit: 0,
        };
        self.querylog
            .export(&dq, format, &labels, out)
            .map_err(|e| format!("export: {e:#}"))
    }

    fn explain(&self, domain: &str, client: Option<IpAddr>) -> Option<ExplanationView> {
        let f = self.filter.current().load_full();
        let e = f.explain(domain, client.unwrap_or(IpAddr::from([127, 0, 0, 1])));
        let mut matches: Vec<String> = e.reason.iter().cloned().collect();
        matches.extend(e.matches.iter().map(|m| {
            let line = m.line.map(|l| format!(" line {l}")).unwrap_or_default();
            let applies = if m.applies {
                ""
            } else {
                " (not for this client's groups)"
            };
            format!(
                "{}{line}: {} ({} {}){applies}",
                m.source, m.rule, m.effect, m.matched
            )
        }));
        if e.paused {
            matches.push("blocking is paused".into());
        }
        if !e.filtering_enabled {
            matches.push("filtering is off".into());
        }
        Some(ExplanationView {
            domain: e.name,
            decision: e.decision.to_string(),
            matches,
        })
    }

    fn client_name(&self, client: &str) -> Option<ClientNameView> {
        self.names.name_of(client).map(|n| ClientNameView {
            name: n.name.to_string(),
            source: n.source.as_str().to_string(),
        })
    }

    fn lists(&self) -> Vec<ListView> {
        self.filter
            .lists()
            .into_iter()
            .map(|l| ListView {
                name: l.name,
                source: l.origin,
                enabled: l.enabled,
                domains: Some(l.domains),
                updated_ms: l.last_update_ms,
                error: l.last_error,
            })
            .collect()
    }

    fn update_lists(&self) -> Result<(), String> {
        let f = self.filter.clone();
        tokio::spawn(async move {
            f.update_lists_now().await;
        });
        Ok(())
    }

    fn pause(&self, minutes: Option<u32>) -> Result<(), String> {
        self.filter.pause(minutes);
        Ok(())
    }
    fn resume(&self) -> Result<(), String> {
        self.filter.resume();
        Ok(())
    }
    fn pause_status(&self) -> PauseView {
        let p = self.filter.pause_status();
        PauseView {
            paused: p.paused,
            until_ms: p.until_ms,
        }
    }

    /// Asks init to reboot (BusyBox `reboot` on the appliance image).
    fn reboot(&self) -> Result<(), String> {
        App::restart(self, crate::update::Restart::Normal)
    }

    fn restart(&self, how: crate::update::Restart) -> Result<(), String> {
        App::restart(self, how)
    }

    fn firmware(&self) -> Result<Arc<crate::update::Updater>, String> {
        self.firmware.clone()
    }

    /// Back to the embedded defaults, keeping only what makes this box
    /// reachable (data directory, web and DNS listen addresses, appliance
    /// flag), and the previous household's data wiped: every file in the
    /// data directory but the fresh config (see `wipe_user_data`). The web
    /// layer forgets the password it holds in RAM; the caller reboots.
    fn factory_reset(&self) -> Result<(), String> {
        let old = App::config(self);
        let mut fresh = Config {
            data_dir: old.data_dir.clone(),
            ..Config::default()
        };
        fresh.web.listen = old.web.listen.clone();
        fresh.web.appliance = old.web.appliance;
        fresh.dns.listen = old.dns.listen.clone();
        App::apply(self, fresh)?;
        super::wipe::wipe_user_data(&old.data_dir, self.config_file())
    }

    fn engine_stats(&self) -> EngineStats {
        let cache = self.engine.cache.stats();
        let limits = &self.engine.counters;
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let log = self.querylog.status();
        EngineStats {
            querylog_dropped_events: log.dropped_events,
            querylog_dropped_rows: log.dropped_rows,
            rate_limited: count(&limits.rate_limited),
            over_upstream_share: count(&limits.over_upstream_share),
            tcp_refused: count(&limits.tcp_refused),
            tcp_stalled: count(&limits.tcp_stalled),
            prefetches: count(&self.engine.prefetch.sent),
            prefetch_saved: cache.prefetch_saved,
            prefetch_dropped: count(&self.engine.prefetch.dropped),
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            cache_entries: cache.entries,
            upstreams: self
                .engine
                .runtime()
                .upstreams()
                .health()
                .into_iter()
                .map(|h| UpstreamStat {
                    name: h.upstream,
                    healthy: h.healthy,
                    latency_ms: Some(h.latency_ms),
                })
                .collect(),
        }
    }
}

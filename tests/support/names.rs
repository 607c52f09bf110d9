//! A household with device names, for `web_names` and the browser test:
//! a running glory-hole whose query log holds an hour of
//! `traffic::CLIENTS`' queries, a local record `tv.lan A 192.168.1.23`
//! and the stand-in upstream playing the router, naming 192.168.1.42
//! `phone.fritz.box` and 192.168.1.20 `laptop.fritz.box` over PTR and no
//! one else (NXDOMAIN).

use super::web::Client;
use glory_hole::app::App;
use glory_hole::clock::now_ms;
use glory_hole::config::Config;
use glory_hole::testing::upstream::{Behaviour, Rec, RecData, StandIn};
use std::sync::Arc;

/// The router's PTR answer for one reverse name.
pub fn ptr(name: &str) -> Behaviour {
    Behaviour::Answer {
        records: vec![Rec::new("", 300, RecData::Ptr(name.into()))],
    }
}

pub struct Household {
    pub app: Arc<App>,
    pub router: StandIn,
    pub web: Client,
    pub base: String,
    pub dir: tempfile::TempDir,
}

/// The household's box, set up, with a logged-in API client.
pub async fn start() -> Household {
    let router = StandIn::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    router.set_default(Behaviour::Nxdomain { soa_minimum: 60 });
    router.set("42.1.168.192.in-addr.arpa", ptr("phone.fritz.box"));
    router.set("20.1.168.192.in-addr.arpa", ptr("laptop.fritz.box"));
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml(
        &format!(
            "data_dir = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"{}\"]\n\
             [web]\nenabled = false\n[names]\nrouter = \"{}\"\n\
             [[local.records]]\nname = \"tv.lan\"\ntype = \"A\"\nvalue = \"192.168.1.23\"\n\
             [[local.records]]\nname = \"printer.lan\"\ntype = \"A\"\nvalue = \"127.0.0.2\"\n\
             [[filter.groups]]\nname = \"kids\"\nclients = [\"192.168.1.23\", \"192.168.1.11\"]\n",
            dir.path().display().to_string(),
            router.addr(),
            router.addr()
        ),
        "names test",
    )
    .unwrap();
    let now = now_ms();
    super::traffic::store(&config, 5, 2_000, now - 3_600_000, now - 60_000);
    let app = App::start(config, dir.path().join("config.toml"))
        .await
        .unwrap();
    let (base, web) = super::web::serve_set_up(&app).await;
    Household {
        app,
        router,
        web,
        base,
        dir,
    }
}

//! Shared by the end-to-end tests: start a real glory-hole on loopback
//! from a config text, with its state in a temporary directory.
#![allow(dead_code)]

use glory_hole::app::App;
use glory_hole::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Running {
    pub app: Arc<App>,
    pub dns: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// `toml` is merged over a test base: DNS on 127.0.0.1 port 0, web off,
/// query log flushed every second, state in a fresh temp dir.
pub async fn start(toml: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = {:?}\n{}",
        dir.path().display().to_string(),
        with_defaults(toml)
    );
    let config = Config::from_toml(&text, "test config").unwrap_or_else(|e| panic!("{e}"));
    let save_to = dir.path().join("config.toml");
    let app = App::start(config, save_to).await.expect("server starts");
    let dns = app.dns_addrs[0];
    Running { app, dns, dir }
}

fn with_defaults(toml: &str) -> String {
    let mut t = toml.to_string();
    if !t.contains("[dns]") {
        t.push_str("\n[dns]\nlisten = [\"127.0.0.1:0\"]\n");
    }
    if !t.contains("[web]") {
        t.push_str("\n[web]\nenabled = false\n");
    }
    t
}

/// Sends a query for `name` (A) on `conn` and reads an answer with its ID
/// within 5 s: proof that the server accepted the connection and serves it.
pub async fn answered_on(conn: &mut tokio::net::TcpStream, name: &str, id: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let q = glory_hole::testing::client::query(id, name, 1, None, false);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let exchange = async {
        conn.write_all(&framed).await?;
        let len = conn.read_u16().await? as usize;
        let mut b = vec![0; len];
        conn.read_exact(&mut b).await?;
        Ok::<_, std::io::Error>(b[..2] == id.to_be_bytes())
    };
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), exchange).await,
        Ok(Ok(true))
    )
}

//! Who may use the web UI: the admin password, login sessions, API tokens
//! for scripts, and the login rate limit.
//!
//! The password and the token hashes live in `<data_dir>/web-auth.json`,
//! saved with `atomic_file::save_atomic`. Hashing is argon2id with bounded memory
//! and one hash at a time, with at most [`HASH_QUEUE`] waiting (the next
//! is refused at once), so a burst of logins cannot exhaust a small
//! board's RAM or keep the owner waiting; which login attempts get a hash
//! at all is `login_limit`'s. Sessions live in RAM only: a restart logs
//! everyone out.
//! Not for: request checks (Host, Origin, CSRF), see `web::guard`.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// argon2id memory per hash (KiB): OWASP's 19 MiB, fine on a Pi Zero 2.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_ITERATIONS: u32 = 2;
pub const MIN_PASSWORD_LEN: usize = 8;
const SESSION_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_SESSIONS: usize = 64;
/// Hashes that may wait for the one running; past that a request needing
/// a hash is refused at once.
pub const HASH_QUEUE: usize = 4;

/// What `web-auth.json` holds, and what a backup carries: hashes only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// PHC string of the admin password; None until setup.
    pub password: Option<String>,
    #[serde(default)]
    pub tokens: Vec<StoredToken>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    /// PHC string of the token's secret part.
    pub hash: String,
    pub created_ms: i64,
    /// Tokens saved before scopes existed could do everything: `admin`.
    #[serde(default = "TokenScope::admin")]
    pub scope: TokenScope,
}

/// What a token may do: `read` the figures a dashboard such as Home
/// Assistant shows (stats, log, metrics: GET requests), or everything
/// (`admin`). Only `admin` may change anything, read the backup or the
/// token list (see `guard::needs_admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    #[default]
    Read,
    Admin,
}

impl TokenScope {
    fn admin() -> TokenScope {
        TokenScope::Admin
    }
    pub fn parse(s: &str) -> Result<TokenScope, String> {
        match s {
            "read" => Ok(TokenScope::Read),
            "admin" => Ok(TokenScope::Admin),
            other => Err(format!("scope: '{other}': use read or admin")),
        }
    }
}

const MAX_TOKENS: usize = 32;

/// An API token as listed on the settings page (the secret is shown once).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub scope: TokenScope,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    last_seen: Instant,
}

pub struct Auth {
    path: PathBuf,
    file: Mutex<Credentials>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Tokens already verified once, so scripts polling /metrics do not pay
    /// an argon2 hash per request. Cleared when a token is revoked.
    verified_tokens: Mutex<HashMap<String, (String, TokenScope)>>,
    pub logins: super::login_limit::LoginLimit,
    hashing: tokio::sync::Semaphore,
    /// Hashes running or waiting (see [`HASH_QUEUE`]).
    queued: AtomicUsize,
    /// Password checks hashed since start (the /metrics figure a login
    /// flood is measured by).
    password_checks: AtomicU64,
}

/// Why a secret could not be checked now.
pub const HASH_BUSY: &str = "the box is busy checking other logins; try again in a moment";

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::fill(&mut b[..]);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, None)
        .expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_secret(secret: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    argon2()
        .hash_password_with_salt(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// An argon2id PHC string asking for no more memory than we would use, so
/// an edited auth file or backup cannot make a login allocate gigabytes.
fn usable_hash(phc: &str) -> Option<PasswordHash> {
    let hash = PasswordHash::new(phc).ok()?;
    if hash.algorithm.as_str() != "argon2id" {
        return None;
    }
    match Params::try_from(&hash) {
        Ok(p) if p.m_cost() <= ARGON2_MEMORY_KIB && p.t_cost() <= 8 && p.p_cost() <= 4 => {
            Some(hash)
        }
        _ => None,
    }
}

fn verify_secret(secret: &str, phc: &str) -> bool {
    let Some(hash) = usable_hash(phc) else {
        return false;
    };
    argon2().verify_password(secret.as_bytes(), &hash).is_ok()
}

/// Checks credentials from a backup before anything is replaced; the error
/// names the bad part.
pub fn check_credentials(c: &Credentials) -> Result<(), String> {
    if let Some(p) = &c.password
        && usable_hash(p).is_none()
    {
        return Err("password: not an argon2id hash this box can check".into());
    }
    if c.tokens.len() > MAX_TOKENS {
        return Err(format!("tokens: at most {MAX_TOKENS}"));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, t) in c.tokens.iter().enumerate() {
        if t.id.len() != 8 || !t.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("tokens[{i}].id: 8 hex digits expected"));
        }
        if !ids.insert(t.id.as_str()) {
            return Err(format!("tokens[{i}].id: '{}' twice", t.id));
        }
        if t.name.trim().is_empty() || t.name.len() > 64 {
            return Err(format!("tokens[{i}].name: 1 to 64 characters"));
        }
        if usable_hash(&t.hash).is_none() {
            return Err(format!(
                "tokens[{i}] ('{}'): not an argon2id hash this box can check",
                t.name
            ));
        }
    }
    Ok(())
}

impl Auth {
    /// Loads `<data_dir>/web-auth.json`; a missing file means "not set up".
    pub fn load(data_dir: &std::path::Path) -> anyhow::Result<Auth> {
        let path = data_dir.join("web-auth.json");
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (delete the file to set a new admin password)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Credentials::default(),
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
        };
        Ok(Auth {
            path,
            file: Mutex::new(file),
            sessions: Mutex::default(),
            verified_tokens: Mutex::default(),
            logins: Default::default(),
            hashing: tokio::sync::Semaphore::new(1),
            queued: AtomicUsize::new(0),
            password_checks: AtomicU64::new(0),
        })
    }

    fn save(&self, file: &Credentials) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(file).expect("auth file serializes");
        crate::atomic_file::save_atomic(&self.path, &bytes)
            .map_err(|e| format!("saving {}: {e}", self.path.display()))
    }

    pub fn password_is_set(&self) -> bool {
        lock(&self.file).password.is_some()
    }

    /// Runs one argon2 computation at a time, off the async threads; with
    /// [`HASH_QUEUE`] already waiting, refuses at once ([`HASH_BUSY`]).
    async fn one_hash<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) > HASH_QUEUE {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(HASH_BUSY.into());
        }
        let _queued = Queued(&self.queued);
        let _permit = self
            .hashing
            .acquire()
            .await
            .expect("semaphore never closed");
        Ok(tokio::task::spawn_blocking(f)
            .await
            .expect("hashing task panicked"))
    }

    /// Password checks hashed since start.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::SeqCst)
    }

    /// Sets the password. `only_if_unset` makes first-boot setup race-free:
    /// of two browsers finishing setup at once, the second is refused.
    pub async fn set_password(&self, password: &str, only_if_unset: bool) -> Result<(), String> {
        check_password_strength(password)?;
        let pw = password.to_string();
        let phc = self.one_hash(move || hash_secret(&pw)).await??;
        let mut file = lock(&self.file).clone();
        if only_if_unset && file.password.is_some() {
            return Err("setup is already finished; log in instead".into());
        }
        file.password = Some(phc);
        self.save(&file)?;
        *lock(&self.file) = file;
        // Everyone logged in with the old password is logged out.
        lock(&self.sessions).clear();
        Ok(())
    }

    /// Checks the admin password. Callers count the attempt first
    /// (`logins.begin`). Err: the hash queue is full.
    pub async fn check_password(&self, password: &str) -> Result<bool, String> {
        let Some(phc) = lock(&self.file).password.clone() else {
            return Ok(false);
        };
        let pw = password.to_string();
        let checks = &self.password_checks;
        let ok = self.one_hash(move || verify_secret(&pw, &phc)).await?;
        checks.fetch_add(1, Ordering::SeqCst);
        Ok(ok)
    }

    /// A new session; returns (session id, csrf token).
    pub fn new_session(&self) -> (String, String) {
        let id = random_hex(32);
        let csrf = random_hex(32);
        let mut s = lock(&self.sessions);
        s.retain(|_, v| v.last_seen.elapsed() < SESSION_IDLE);
        if s.len() >= MAX_SESSIONS {
            // Drop the least recently used session rather than refuse a login.
            if let Some(oldest) = s
                .iter()
                .min_by_key(|(_, v)| v.last_seen)
                .map(|(k, _)| k.clone())
            {
                s.remove(&oldest);
            }
        }
        s.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                last_seen: Instant::now(),
            },
        );
        (id, csrf)
    }

    pub fn session(&self, id: &str) -> Option<Session> {
        let mut s = lock(&self.sessions);
        let sess = s.get_mut(id)?;
        if sess.last_seen.elapsed() >= SESSION_IDLE {
            s.remove(id);
            return None;
        }
        sess.last_seen = Instant::now();
        Some(sess.clone())
    }

    pub fn end_session(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    pub fn tokens(&self) -> Vec<TokenInfo> {
        lock(&self.file)
            .tokens
            .iter()
            .map(|t| TokenInfo {
                id: t.id.clone(),
                name: t.name.clone(),
                created_ms: t.created_ms,
                scope: t.scope,
            })
            .collect()
    }

    /// Creates a token; the returned secret is never stored in clear.
    pub async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
    ) -> Result<(TokenInfo, String), String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err("name: give the token a name of 1 to 64 characters".into());
        }
        let id = random_hex(4);
        let secret = random_hex(24);
        let token = format!("gh_{id}_{secret}");
        let s = secret.clone();
        let hash = self.one_hash(move || hash_secret(&s)).await??;
        let entry = StoredToken {
            id: id.clone(),
            name: name.to_string(),
            hash,
            created_ms: crate::clock::now_ms(),
            scope,
        };
        let mut file = lock(&self.file).clone();
        if file.tokens.len() >= MAX_TOKENS {
            return Err("name: at most 32 tokens; revoke one first".into());
        }
        file.tokens.push(entry.clone());
        self.save(&file)?;
        *lock(&self.file) = file;
        Ok((
            TokenInfo {
                id,
                name: entry.name,
                created_ms: entry.created_ms,
                scope,
            },
            token,
        ))
    }

    pub fn revoke_token(&self, id: &str) -> Result<(), String> {
        let mut file = lock(&self.file).clone();
        let before = file.tokens.len();
        file.tokens.retain(|t| t.id != id);
        if file.tokens.len() == before {
            return Err(format!("no token with id '{id}'"));
        }
        self.save(&file)?;
        *lock(&self.file) = file;
        lock(&self.verified_tokens).retain(|_, (tid, _)| tid != id);
        Ok(())
    }

    /// Checks a bearer token "gh_<id>_<secret>"; returns the token id and
    /// scope.
    pub async fn check_token(&self, token: &str) -> Option<(String, TokenScope)> {
        if let Some(hit) = lock(&self.verified_tokens).get(token) {
            return Some(hit.clone());
        }
        let rest = token.strip_prefix("gh_")?;
        let (id, secret) = rest.split_once('_')?;
        let (hash, scope) = lock(&self.file)
            .tokens
            .iter()
            .find(|t| t.id == id)
            .map(|t| (t.hash.clone(), t.scope))?;
        let s = secret.to_string();
        if !self.one_hash(move || verify_secret(&s, &hash)).await.ok()? {
            return None;
        }
        let mut cache = lock(&self.verified_tokens);
        if cache.len() < 256 {
            cache.insert(token.to_string(), (id.to_string(), scope));
        }
        Some((id.to_string(), scope))
    }

    /// The stored hashes, for a backup.
    pub fn credentials(&self) -> Credentials {
        lock(&self.file).clone()
    }

    /// Replaces the password and tokens with those of a backup; everyone
    /// logged in is logged out, as after a password change.
    /// `only_if_unset`: for first-boot setup, as in `set_password`.
    pub fn restore(&self, c: Credentials, only_if_unset: bool) -> Result<(), String> {
        check_credentials(&c)?;
        let mut file = lock(&self.file);
        if only_if_unset && file.password.is_some() {
            return Err("setup is already finished; log in and restore on the System page".into());
        }
        self.save(&c)?;
        *file = c;
        drop(file);
        lock(&self.sessions).clear();
        lock(&self.verified_tokens).clear();
        Ok(())
    }

    /// Forgets the password, tokens and sessions, and the file's previous
    /// version (factory reset).
    pub fn reset(&self) -> Result<(), String> {
        for path in [
            self.path.clone(),
            crate::atomic_file::previous_path(&self.path),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("removing {}: {e}", path.display())),
            }
        }
        *lock(&self.file) = Credentials::default();
        lock(&self.sessions).clear();
        lock(&self.verified_tokens).clear();
        Ok(())
    }
}

pub fn check_password_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "password: use at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("password: at most 1024 bytes".into());
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_roundtrip_and_bounded_params() {
        let h = hash_secret("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("wrong horse", &h));
        // A hash demanding 1 GiB is refused without being computed.
        let greedy = h.replace("m=19456", "m=1048576");
        assert!(!verify_secret("correct horse", &greedy));
    }

    #[tokio::test]
    async fn password_and_tokens_persist() {
        let dir = tempfile::tempdir().unwrap();
        let a = Auth::load(dir.path()).unwrap();
        assert!(!a.password_is_set());
        assert!(a.set_password("short", true).await.is_err());
        a.set_password("long enough pw", true).await.unwrap();
        assert!(a.set_password("another one!", true).await.is_err());
        let (info, token) = a.create_token("script", TokenScope::Read).await.unwrap();
        let b = Auth::load(dir.path()).unwrap();
        assert!(b.password_is_set());
        assert!(b.check_password("long enough pw").await.unwrap());
        assert_eq!(b.password_checks(), 1);
        assert_eq!(
            b.check_token(&token).await,
            Some((info.id.clone(), TokenScope::Read))
        );
        assert_eq!(b.check_token("gh_00000000_nope").await, None);
        b.revoke_token(&info.id).unwrap();
        assert_eq!(b.check_token(&token).await, None);
    }
}

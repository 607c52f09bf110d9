//! `glory-hole bundle keygen | create | verify | info`: the release side of
//! updates, used by people and by `make` (docs/update.md).
//!
//! Not for: installing (the box does that through `installer`).

use super::bundle::{self, CheckError};
use super::manifest::{Manifest, PRODUCT, PayloadEntry, Policy, utc};
use super::{AcceptedKeys, keys};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: &str = "\
usage: glory-hole bundle keygen PREFIX
           writes PREFIX.key (secret) and PREFIX.pub
       glory-hole bundle create --key KEY --version V --min-version M --board B [--board B...]
           --boot FILE --root FILE [--payload NAME=FILE...] [--built UNIX_SECONDS] -o OUT
           (a boot image per slot instead of --boot: --payload boot-a=FILE --payload boot-b=FILE)
           (--built defaults to $SOURCE_DATE_EPOCH, else now)
       glory-hole bundle verify --pubkey PUB [--pubkey PUB...] [--board B --running V] FILE
       glory-hole bundle info FILE     what FILE claims to be; the signature is not checked
";

/// Runs `glory-hole bundle ARGS...`.
pub fn run(args: &[&str]) -> ExitCode {
    let result = match args {
        ["keygen", prefix] => keygen(Path::new(prefix)),
        ["create", rest @ ..] => Options::parse(rest).and_then(|o| create(&o)),
        ["verify", rest @ ..] => Options::parse(rest).and_then(|o| verify(&o)),
        ["info", file] => info(Path::new(file)),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("glory-hole bundle {}: {e}", args[0]);
            ExitCode::FAILURE
        }
    }
}

/// `--name value` pairs (repeatable) and the other words, in order.
struct Options<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    words: Vec<&'a str>,
}

impl<'a> Options<'a> {
    fn parse(args: &[&'a str]) -> Result<Options<'a>, String> {
        let mut o = Options {
            pairs: Vec::new(),
            words: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a.starts_with('-') {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                o.pairs.push((a, v));
            } else {
                o.words.push(a);
            }
        }
        Ok(o)
    }

    fn all(&self, name: &str) -> Vec<&'a str> {
        self.pairs
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|p| p.1)
            .collect()
    }

    fn one(&self, name: &str) -> Result<&'a str, String> {
        match self.all(name)[..] {
            [v] => Ok(v),
            [] => Err(format!("{name} is required\n{USAGE}")),
            _ => Err(format!("{name} given twice")),
        }
    }

    fn optional(&self, name: &str) -> Option<&'a str> {
        self.all(name).last().copied()
    }
}

fn keygen(prefix: &Path) -> Result<String, String> {
    let key = keys::generate();
    let (secret, public) =
        keys::write_pair(prefix, &key, "Keep the .key file out of every repository.")
            .map_err(|e| e.to_string())?;
    Ok(format!(
        "key {}: secret {}, public {}\n",
        keys::fingerprint(key.verifying_key().as_bytes()),
        secret.display(),
        public.display()
    ))
}

fn create(o: &Options) -> Result<String, String> {
    let key_path = o.one("--key")?;
    let key = keys::read_signing_key(Path::new(key_path)).map_err(|e| e.to_string())?;
    let out = PathBuf::from(o.one("-o")?);
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    // One boot image for both slots, or one per slot (--payload boot-a=...).
    if !o.all("--boot").is_empty() {
        files.push(("boot".into(), o.one("--boot")?.into()));
    }
    files.push(("root".into(), o.one("--root")?.into()));
    for p in o.all("--payload") {
        let (name, file) = p
            .split_once('=')
            .ok_or(format!("--payload {p}: expected NAME=FILE"))?;
        files.push((name.into(), file.into()));
    }
    if !files.iter().any(|(n, _)| n.starts_with("boot")) {
        return Err(format!(
            "--boot (or --payload boot-a=FILE --payload boot-b=FILE) is required\n{USAGE}"
        ));
    }
    let built = match o
        .optional("--built")
        .map(str::to_string)
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
    {
        Some(s) => s
            .parse()
            .map_err(|_| format!("build time '{s}' is not seconds since 1970"))?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs(),
    };
    let open = |p: &Path| {
        File::open(p)
            .map(|f| BufReader::with_capacity(super::CHUNK, f))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let mut payloads = Vec::new();
    for (name, path) in &files {
        payloads.push(
            PayloadEntry::measure(name, &mut open(path)?)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    let manifest = Manifest {
        product: PRODUCT.into(),
        boards: o.all("--board").iter().map(|b| b.to_string()).collect(),
        version: o.one("--version")?.into(),
        built_unix_s: built,
        min_version: o.one("--min-version")?.into(),
        payloads,
    };
    if manifest.boards.is_empty() {
        return Err(format!("--board is required\n{USAGE}"));
    }
    let mut readers = files
        .iter()
        .map(|(_, p)| open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sources: Vec<&mut dyn Read> = readers.iter_mut().map(|r| r as &mut dyn Read).collect();
    // Written beside OUT and renamed: a failed run leaves no bundle-looking file.
    let part = out.with_extension("ghb.part");
    let written = File::create(&part)
        .map(|f| BufWriter::with_capacity(super::CHUNK, f))
        .and_then(|mut f| bundle::write(&mut f, &key, &manifest, &mut sources))
        .and_then(|n| std::fs::rename(&part, &out).map(|_| n))
        .map_err(|e| {
            let _ = std::fs::remove_file(&part);
            format!("{}: {e}", out.display())
        })?;
    Ok(format!(
        "{}: {} {} for [{}], {written} bytes, signed by key {}\n",
        out.display(),
        PRODUCT,
        manifest.version,
        manifest.boards.join(", "),
        keys::fingerprint(key.verifying_key().as_bytes())
    ))
}

fn verify(o: &Options) -> Result<String, String> {
    let [file] = o.words[..] else {
        return Err(format!("one FILE to verify\n{USAGE}"));
    };
    let pubs: Vec<PathBuf> = o.all("--pubkey").iter().map(PathBuf::from).collect();
    if pubs.is_empty() {
        return Err(format!("--pubkey is required\n{USAGE}"));
    }
    let keys = AcceptedKeys::from_files(&pubs).map_err(|e| e.to_string())?;
    let policy = match (o.optional("--board"), o.optional("--running")) {
        (None, None) => None,
        (Some(b), Some(v)) => Some(Policy {
            board: b.into(),
            running_version: v.into(),
        }),
        _ => return Err("--board and --running go together".into()),
    };
    let mut f = File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let m = bundle::check(&mut f, keys, policy).map_err(|e| match e {
        CheckError::Refused(r) => format!("{file}: refused: {r}"),
        CheckError::Io(e) => format!("{file}: {e}"),
    })?;
    Ok(format!(
        "{file}: ok: {PRODUCT} {} for [{}], signature and {} payload hashes checked\n",
        m.version,
        m.boards.join(", "),
        m.payloads.len()
    ))
}

fn info(path: &Path) -> Result<String, String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let head = bundle::read_head(&mut f).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = &head.manifest;
    let mut text = format!(
        "{}: {} {} (bundle format {})\n\
         boards:      {}\n\
         built:       {} ({})\n\
         replaces:    {} or later\n\
         signed by:   key {} (signature not checked here; use verify)\n",
        path.display(),
        m.product,
        m.version,
        bundle::FORMAT,
        m.boards.join(", "),
        utc(m.built_unix_s),
        m.built_unix_s,
        m.min_version,
        keys::fingerprint(&head.signer)
    );
    for p in &m.payloads {
        text += &format!(
            "payload {:<10} {:>12} bytes  sha256 {}\n",
            p.name,
            p.size,
            keys::hex(&p.sha256)
        );
    }
    Ok(text)
}

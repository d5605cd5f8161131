//! htpasswd files, as Apache's `htpasswd` and `openssl passwd` write them: one `user:hash` per
//! line. Accepted hashes: bcrypt (`$2y$`, `htpasswd -B`), MD5-crypt (`$apr1$`, htpasswd's
//! default, and `$1$`), SHA-crypt (`$5$`, `$6$`, `openssl passwd -6`) and `{SHA}`
//! (`htpasswd -s`). Plain-text passwords are refused when the file is loaded, not accepted
//! silently, and so are work factors above [`MAX_BCRYPT_COST`] and [`MAX_SHA_CRYPT_ROUNDS`]:
//! a `$2b$31$` hash takes days to check, so three logins against it would hold every
//! verification thread for good.
//!
//! A name that is not in the file is checked against the costliest hash that is, and refused
//! whatever that says, so that an unknown user takes as long to refuse as a known one: the
//! time of an answer does not tell which user names exist.

use std::collections::HashMap;

use base64::Engine;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// The highest bcrypt cost accepted: about a second per check on a current core (each step
/// doubles it). `htpasswd -B` writes 5 unless told otherwise.
pub const MAX_BCRYPT_COST: u32 = 14;

/// The most SHA-crypt rounds accepted (`$6$rounds=N$`): about a second per check. The default,
/// when the hash names none, is 5,000.
pub const MAX_SHA_CRYPT_ROUNDS: u64 = 2_000_000;

/// A parsed htpasswd file: user -> hash.
#[derive(Default)]
pub struct Htpasswd {
    users: HashMap<String, Hash>,
    /// The user whose hash costs most to check: unknown names are checked against it.
    decoy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hash {
    Bcrypt(String),
    /// The magic (`$apr1$` or `$1$`), the salt and the whole stored string.
    Md5Crypt {
        magic: &'static str,
        salt: String,
        full: String,
    },
    Sha256Crypt(String),
    Sha512Crypt(String),
    /// The SHA-1 digest.
    Sha1([u8; 20]),
}

impl Htpasswd {
    /// Parses `text`; an error names the line (never its hash, which may be weak enough to crack).
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_string())?;
        let mut out = Htpasswd::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = n + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {at}: expected user:hash"));
            };
            if user.is_empty() {
                return Err(format!("line {at}: empty user name"));
            }
            let hash = parse_hash(hash).ok_or_else(|| {
                format!(
                    "line {at}: user {user:?} has an unsupported or plain-text password; use \
                     bcrypt (htpasswd -B), $apr1$, $5$ / $6$ (openssl passwd -6) or {{SHA}}"
                )
            })?;
            if let Some(too_slow) = hash.over_limit() {
                return Err(format!("line {at}: user {user:?}'s hash {too_slow}"));
            }
            if out.users.insert(user.to_string(), hash).is_some() {
                return Err(format!("line {at}: user {user:?} is listed twice"));
            }
        }
        out.pick_decoy();
        Ok(out)
    }

    fn pick_decoy(&mut self) {
        self.decoy = self
            .users
            .iter()
            .max_by_key(|(user, hash)| (hash.work(), *user))
            .map(|(user, _)| user.clone());
    }

    /// Adds the users of `other`; a user in both is an error.
    pub fn merge(&mut self, other: Htpasswd) -> Result<(), String> {
        for (user, hash) in other.users {
            if self.users.insert(user.clone(), hash).is_some() {
                return Err(format!("user {user:?} is in both file and inline"));
            }
        }
        self.pick_decoy();
        Ok(())
    }

    pub fn has(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. Deliberately slow for bcrypt and SHA-crypt: run it off
    /// the reactor. A user not in the file costs as much as the costliest one that is.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                // Spent, and refused whatever the outcome.
                let decoy = self.decoy.as_ref().and_then(|d| self.users.get(d));
                let _ = decoy.map(|h| std::hint::black_box(h.verify(password)));
                false
            }
        }
    }
}

impl Hash {
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Hash::Md5Crypt { magic, salt, full } => {
                let computed = md5_crypt(password, salt.as_bytes(), magic);
                computed.as_bytes().ct_eq(full.as_bytes()).into()
            }
            Hash::Sha256Crypt(h) => {
                std::str::from_utf8(password).is_ok_and(|p| sha_crypt::sha256_check(p, h).is_ok())
            }
            Hash::Sha512Crypt(h) => {
                std::str::from_utf8(password).is_ok_and(|p| sha_crypt::sha512_check(p, h).is_ok())
            }
            Hash::Sha1(digest) => {
                let got = sha1::Sha1::digest(password);
                got.as_slice().ct_eq(digest).into()
            }
        }
    }

    /// How much work one check takes, in comparable units (rounds of the underlying hash):
    /// what picks the decoy.
    fn work(&self) -> u64 {
        match self {
            Hash::Bcrypt(h) => h
                .parse::<bcrypt::HashParts>()
                .map_or(0, |p| 1u64 << p.get_cost().min(40)),
            Hash::Sha256Crypt(h) | Hash::Sha512Crypt(h) => sha_crypt_rounds(h),
            Hash::Md5Crypt { .. } => 1000,
            Hash::Sha1(_) => 1,
        }
    }

    /// What is wrong with the hash's work factor, if it is above what sluice checks.
    fn over_limit(&self) -> Option<String> {
        match self {
            Hash::Bcrypt(h) => {
                let cost = h.parse::<bcrypt::HashParts>().ok()?.get_cost();
                (cost > MAX_BCRYPT_COST).then(|| {
                    format!(
                        "has bcrypt cost {cost}, above {MAX_BCRYPT_COST}, the most sluice checks \
                         (each step doubles the time of every login); hash it again with \
                         htpasswd -B -C {MAX_BCRYPT_COST} or less"
                    )
                })
            }
            Hash::Sha256Crypt(h) | Hash::Sha512Crypt(h) => {
                let rounds = sha_crypt_rounds(h);
                (rounds > MAX_SHA_CRYPT_ROUNDS).then(|| {
                    format!("has {rounds} SHA-crypt rounds, above {MAX_SHA_CRYPT_ROUNDS}, the most sluice checks")
                })
            }
            Hash::Md5Crypt { .. } | Hash::Sha1(_) => None,
        }
    }
}

/// The rounds of a `$5$` / `$6$` hash: `rounds=N$` after the magic, else 5,000.
fn sha_crypt_rounds(h: &str) -> u64 {
    h.get(3..)
        .and_then(|rest| rest.strip_prefix("rounds="))
        .and_then(|rest| rest.split('$').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(5000)
}

fn parse_hash(h: &str) -> Option<Hash> {
    if ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| h.starts_with(p))
    {
        // Checked now, so a mangled hash is a config error rather than every login failing.
        h.parse::<bcrypt::HashParts>().ok()?;
        return Some(Hash::Bcrypt(h.to_string()));
    }
    for magic in ["$apr1$", "$1$"] {
        if let Some(rest) = h.strip_prefix(magic) {
            let (salt, digest) = rest.split_once('$')?;
            if salt.is_empty() || salt.len() > 8 || digest.len() != 22 {
                return None;
            }
            return Some(Hash::Md5Crypt {
                magic,
                salt: salt.to_string(),
                full: h.to_string(),
            });
        }
    }
    if h.starts_with("$5$") {
        return Some(Hash::Sha256Crypt(h.to_string()));
    }
    if h.starts_with("$6$") {
        return Some(Hash::Sha512Crypt(h.to_string()));
    }
    if let Some(b64) = h.strip_prefix("{SHA}") {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        return Some(Hash::Sha1(bytes.try_into().ok()?));
    }
    None
}

/// The crypt(3) base-64 alphabet, least significant 6 bits first.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Poul-Henning Kamp's MD5-crypt, as FreeBSD and Apache (magic `$apr1$`) define it; the whole
/// `magic salt $ digest` string.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &str) -> String {
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(magic.as_bytes());
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }
    let f = digest;
    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(magic);
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut put = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    let triple = |a: u8, b: u8, c: u8| (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
    put(triple(f[0], f[6], f[12]), 4);
    put(triple(f[1], f[7], f[13]), 4);
    put(triple(f[2], f[8], f[14]), 4);
    put(triple(f[3], f[9], f[15]), 4);
    put(triple(f[4], f[10], f[5]), 4);
    put(u32::from(f[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `openssl passwd -apr1 -salt abcdefgh secret`, `openssl passwd -1 -salt
    /// abcdefgh secret`, `openssl passwd -6 -salt abcdefgh secret` and `htpasswd -bs`.
    const FILE: &str = "\
# comment
apr:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/
md5:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1
sha512:$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.
sha1:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=
";

    #[test]
    fn every_supported_hash_verifies_its_password_and_only_it() {
        let mut h = Htpasswd::parse(FILE.as_bytes()).unwrap();
        let bcrypt = bcrypt::hash("secret", 4).unwrap();
        h.merge(Htpasswd::parse(format!("bc:{bcrypt}").as_bytes()).unwrap())
            .unwrap();
        for user in ["apr", "md5", "sha512", "sha1", "bc"] {
            assert!(h.verify(user, b"secret"), "{user}");
            assert!(!h.verify(user, b"secreT"), "{user}");
            assert!(!h.verify(user, b""), "{user}");
        }
        assert!(!h.verify("nobody", b"secret"));
    }

    #[test]
    fn costs_above_the_stated_maximum_are_refused_when_loaded() {
        let e = |t: &str| Htpasswd::parse(t.as_bytes()).err().unwrap();
        // A well-formed hash of cost 31 (its digest need not match anything to be refused).
        let c31 = "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let err = e(&format!("slow:{c31}"));
        assert!(
            err.starts_with("line 1: user \"slow\"'s hash has bcrypt cost 31, above 14"),
            "{err}"
        );
        assert!(!err.contains("abcdefgh"), "the hash is never shown: {err}");
        let c15 = c31.replace("$31$", "$15$");
        assert!(e(&format!("slow:{c15}")).contains("bcrypt cost 15"));
        let c14 = c31.replace("$31$", "$14$");
        assert!(Htpasswd::parse(format!("ok:{c14}").as_bytes()).is_ok());
        let many = "$6$rounds=999999999$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
        assert!(e(&format!("r:{many}")).contains("999999999 SHA-crypt rounds"));
    }

    #[test]
    fn an_unknown_user_is_checked_against_the_costliest_hash_and_refused() {
        let cheap = "sha1:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";
        let dear = format!("bc:{}", bcrypt::hash("secret", 6).unwrap());
        let h = Htpasswd::parse(format!("{cheap}\n{dear}\n").as_bytes()).unwrap();
        assert_eq!(h.decoy.as_deref(), Some("bc"));
        // The decoy's own password: still refused for a name not in the file.
        assert!(!h.verify("nobody", b"secret"));
        assert!(h.verify("bc", b"secret"));
        let mut merged = Htpasswd::parse(cheap.as_bytes()).unwrap();
        assert_eq!(merged.decoy.as_deref(), Some("sha1"));
        merged
            .merge(Htpasswd::parse(dear.as_bytes()).unwrap())
            .unwrap();
        assert_eq!(
            merged.decoy.as_deref(),
            Some("bc"),
            "picked again after a merge"
        );
    }

    #[test]
    fn md5_crypt_matches_openssl() {
        assert_eq!(
            md5_crypt(b"secret", b"abcdefgh", "$apr1$"),
            "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"
        );
    }

    #[test]
    fn plain_text_and_malformed_lines_are_refused_by_line_without_the_hash() {
        let e = |t: &str| Htpasswd::parse(t.as_bytes()).err().unwrap();
        assert!(e("bob:hunter2").starts_with("line 1: user \"bob\" has an unsupported"));
        assert!(!e("bob:hunter2").contains("hunter2"));
        assert_eq!(e("\n\nnocolon"), "line 3: expected user:hash");
        assert_eq!(
            e(":{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="),
            "line 1: empty user name"
        );
        assert!(e("a:$2y$10$short").contains("unsupported"));
        assert!(
            e("a:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\na:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=")
                .contains("listed twice")
        );
    }
}

/// # MenshenPolicyAdministrator
///
/// The session half of NIST SP 800-207's policy administrator: it establishes,
/// raises and tears down the sessions the enforcement point checks on every
/// request (FSC guideline principles 1.1, 1.2, 1.5 and 5.5).
///
/// - ``SessionManager``: server-side sessions. The id is 32 random bytes in a
///   `__Host-` cookie; only its SHA-256 is stored. Idle and absolute lifetimes,
///   a new id on every privilege change (no fixation), revocation of one or all
///   of a user's sessions, seen by the very next request.
/// - ``IdentityService``: sign-in over the stored credentials (password, TOTP,
///   recovery codes, WebAuthn passkeys and security keys), enrolment of new
///   factors, step-up, with ``SignInThrottle`` in front and an event for every
///   outcome.
/// - ``IdentityEvents``: OCSF 1.8 Authentication (3002) and Account Change
///   (3001) events, appended to the hash-chained event log.
///
/// **What it must never do:** speak HTTP (the portal does), or store a secret
/// in the clear. Everything is reached through the `MenshenStorage` protocols,
/// so the same code runs on the in-memory, SQLite and PostgreSQL stores.
///
/// Nothing here re-implements a package: cryptography is swift-crypto, the
/// factor checks are `MenshenIdentity`.
public enum MenshenPolicyAdministrator {}

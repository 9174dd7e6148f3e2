/// MenshenPolicyEngine — the decision point facade (NIST SP 800-207's policy
/// engine as the enforcement point sees it).
///
/// An ``AccessRequest`` (principal with groups and roles; session attributes
/// such as level of assurance and factor ages; device attributes when known;
/// context: time in the institution's time zone, source address, network
/// zone, country, method, path, risk; resource: the protected application with
/// its classification and guideline scenario) becomes Cedar entities and a
/// Cedar context, is authorized by `MenshenCedar` against policies validated
/// against ``MenshenSchema``, and yields a ``AccessDecision`` value: allow,
/// deny or step-up, with reason codes, the determining policy ids and the
/// obligations read from their annotations. It knows nothing of HTTP; the
/// transports convert their requests into an `AccessRequest` in one place.
/// No I/O.
public enum MenshenPolicyEngine {}

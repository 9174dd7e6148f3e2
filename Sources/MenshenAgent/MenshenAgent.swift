/// # MenshenAgent
///
/// The device side of the device pillar (FSC principles 2.1, 2.2), shared by
/// `menshen agent …` and the stand-alone `menshen-agent` executable:
/// enrolment with a one-time token (a P-256 key in a protected file, or in
/// the TPM 2.0 with evidence the server checks, ``AgentTPM``), and posture
/// reports signed with the device key against a server nonce.
///
/// It talks to the portal over HTTPS (http only to a loopback address) and to
/// the TPM through tpm2-tools subprocesses; it never reads the server's store
/// or configuration.
public enum MenshenAgent {}

/// MenshenServer — runtime assembly.
///
/// Opens the configured store (``StoreFactory``), serves the operations
/// listener (``AdminServer``: `/healthz`, `/readyz`, `/metrics`) and the
/// user-facing portal (``PortalServer``), seeds and serves the demo
/// organisation (``DemoOrganisation``, ``SampleApplication``), and runs them
/// all under swift-service-lifecycle with graceful shutdown on SIGTERM and
/// SIGINT (``MenshenRuntime``). The enforcement point, identity and other
/// pillars plug in here as they arrive.
public enum MenshenServer {}

extension BuiltInRules {
    /// T1550.004 Web Session Cookie / T1539 Steal Web Session Cookie: one
    /// session seen from two or more source addresses within 12 hours (the
    /// session's absolute lifetime). The sign-in event names the session
    /// `session.uid`, a decision event `actor.session.uid`; an alias joins them.
    static let sessionTokenReuse = SigmaRuleFile(name: "menshen_session_token_reuse.yml", text: """
        title: Session issued at sign-in
        id: 0e77c98d-a8b6-42ba-8042-e82ce763f683
        name: menshen_session_issued
        status: experimental
        description: A successful sign-in that issued a session (Authentication 3002 Logon, status Success, with session.uid).
        author: Menshen project
        date: 2026-11-25
        logsource:
            product: menshen
            category: authentication
            service: identity
        detection:
            selection:
                activity_id: 1
                status_id: 1
                session.uid|exists: true
            condition: selection
        falsepositives:
            - Every sign-in; this rule only feeds the correlation
        level: informational
        ---
        title: Session presented at the gateway
        id: 817a23bb-11a5-43cb-b47e-b7e17d389012
        name: menshen_session_presented
        status: experimental
        description: An access decision made for a request carrying a session (Web Resources Activity 6001 with actor.session.uid).
        author: Menshen project
        date: 2026-11-25
        logsource:
            product: menshen
            category: web_resources_activity
            service: gateway
        detection:
            selection:
                actor.session.uid|exists: true
            condition: selection
        falsepositives:
            - Every request; this rule only feeds the correlation
        level: informational
        ---
        title: Session token used from another address
        id: 043b8936-e545-44b7-8e67-c2e809a27d88
        name: menshen_session_token_reuse
        status: experimental
        description: One session seen from two or more source addresses within 12 hours; the session cookie may have been stolen and replayed.
        author: Menshen project
        date: 2026-11-25
        tags:
            - attack.defense-evasion
            - attack.lateral-movement
            - attack.t1550.004
            - attack.credential-access
            - attack.t1539
        correlation:
            type: value_count
            rules:
                - menshen_session_issued
                - menshen_session_presented
            aliases:
                session:
                    menshen_session_issued: session.uid
                    menshen_session_presented: actor.session.uid
            group-by:
                - session
            timespan: 12h
            condition:
                gte: 2
                field: src_endpoint.ip
        falsepositives:
            - A laptop that moves between networks during one session (office to mobile hotspot)
        level: high

        """)
}

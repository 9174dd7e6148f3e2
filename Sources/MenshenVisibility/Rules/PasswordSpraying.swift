extension BuiltInRules {
    /// T1110.003 Password Spraying: one source fails the password of ten or
    /// more different user names within 30 minutes (`value_count` of `user.name`
    /// by `src_endpoint.ip`).
    static let passwordSpraying = SigmaRuleFile(name: "menshen_password_spraying.yml", text: """
        title: Failed password at sign-in (spraying input)
        id: 10e766cc-1e2e-40e3-a649-3f43825db40e
        name: menshen_password_failure_for_spraying
        status: experimental
        description: A sign-in refused at the password step (Authentication 3002 Logon, status Failure, password factor).
        author: Menshen project
        date: 2026-11-25
        logsource:
            product: menshen
            category: authentication
            service: identity
        detection:
            selection:
                activity_id: 1
                status_id: 2
                auth_factors.factor_type: pwd
            condition: selection
        falsepositives:
            - Users mistyping their password
        level: low
        ---
        title: Password spraying from one source
        id: 7557e31f-73fd-45ef-bcf2-90d0b3d083bb
        name: menshen_password_spraying
        status: experimental
        description: One source address fails the password of ten or more different user names within 30 minutes.
        author: Menshen project
        date: 2026-11-25
        tags:
            - attack.credential-access
            - attack.t1110.003
        correlation:
            type: value_count
            rules:
                - menshen_password_failure_for_spraying
            group-by:
                - src_endpoint.ip
            timespan: 30m
            condition:
                gte: 10
                field: user.name
        falsepositives:
            - A shared kiosk or a proxy that hides many users behind one address during a password reset campaign
        level: high

        """)
}

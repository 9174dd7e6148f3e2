extension BuiltInRules {
    /// T1110.001 Password Guessing: five or more failed passwords for one user
    /// name within 10 minutes (`event_count` by `user.name`).
    static let passwordGuessing = SigmaRuleFile(name: "menshen_password_guessing.yml", text: """
        title: Failed password at sign-in (guessing input)
        id: 88e55756-bbb4-4e02-8b10-123c85dcb075
        name: menshen_password_failure_for_guessing
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
        title: Password guessing against one account
        id: 1824b297-1168-42cf-a3d8-aa709f402c50
        name: menshen_password_guessing
        status: experimental
        description: Five or more failed passwords for one user name within 10 minutes, from any source.
        author: Menshen project
        date: 2026-11-25
        tags:
            - attack.credential-access
            - attack.t1110.001
        correlation:
            type: event_count
            rules:
                - menshen_password_failure_for_guessing
            group-by:
                - user.name
            timespan: 10m
            condition:
                gte: 5
        falsepositives:
            - A user who keeps trying an old password after a change
        level: medium

        """)
}

extension BuiltInRules {
    /// T1621 Multi-Factor Authentication Request Generation: three or more
    /// second-factor failures (wrong TOTP or recovery code, refused passkey,
    /// failed step-up) for one user within 10 minutes.
    static let repeatedSecondFactorFailures = SigmaRuleFile(name: "menshen_repeated_second_factor_failures.yml", text: """
        title: Second factor refused
        id: e8694206-507b-4c50-bd9e-da01f35c2b55
        name: menshen_second_factor_failure
        status: experimental
        description: A sign-in or step-up refused at the second factor (wrong TOTP or recovery code, refused passkey).
        author: Menshen project
        date: 2026-11-25
        logsource:
            product: menshen
            category: authentication
            service: identity
        detection:
            selection_signin:
                activity_id: 1
                status_id: 2
                status_detail:
                    - wrong totp
                    - wrong recovery code
            selection_passkey:
                activity_id: 1
                status_id: 2
                status_detail|startswith: 'passkey refused:'
            selection_step_up:
                activity_id: 99
                status_id: 2
                status_detail|startswith: 'step-up: wrong'
            condition: 1 of selection_*
        falsepositives:
            - A user whose authenticator clock drifted
        level: low
        ---
        title: Repeated second-factor failures for one user
        id: 24d5a2eb-68b4-40f8-8a69-ef064b098e55
        name: menshen_repeated_second_factor_failures
        status: experimental
        description: Three or more second-factor failures for one user within 10 minutes; someone who has the password is trying the second factor.
        author: Menshen project
        date: 2026-11-25
        tags:
            - attack.credential-access
            - attack.t1621
        correlation:
            type: event_count
            rules:
                - menshen_second_factor_failure
            group-by:
                - user.name
            timespan: 10m
            condition:
                gte: 3
        falsepositives:
            - A user with a new phone whose authenticator was not moved
        level: high

        """)
}

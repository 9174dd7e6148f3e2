extension BuiltInRules {
    /// T1556.006 Modify Authentication Process: Multi-Factor Authentication:
    /// a second factor removed within an hour after a risky sign-in (a failed
    /// attempt on the account, or a sign-in with a recovery code) for the same
    /// user (`temporal_ordered` by `user.name`).
    static let mfaFactorRemovedAfterRiskySignIn = SigmaRuleFile(name: "menshen_mfa_removed_after_risky_signin.yml", text: """
        title: Risky sign-in
        id: ced43ef1-3cbd-4f87-a4a8-1af3b6a517e7
        name: menshen_risky_signin
        status: experimental
        description: A failed sign-in on the account, or a sign-in completed with a recovery code.
        author: Menshen project
        date: 2026-11-25
        logsource:
            product: menshen
            category: authentication
            service: identity
        detection:
            failure:
                activity_id: 1
                status_id: 2
            recovery:
                activity_id: 1
                status_id: 1
                status_detail|contains: recovery code
            condition: failure or recovery
        falsepositives:
            - Users mistyping their password
        level: low
        ---
        title: Second factor removed
        id: 338906ba-1dae-41b1-bab0-948bc32e5a32
        name: menshen_mfa_factor_removed
        status: experimental
        description: Account Change 3001 activity 11 (MFA Factor Disable), except a recovery code used up at sign-in.
        author: Menshen project
        date: 2026-11-25
        logsource:
            product: menshen
            category: account_change
            service: identity
        detection:
            selection:
                activity_id: 11
            filter_recovery_code_use:
                message|startswith: recovery code used
            condition: selection and not filter_recovery_code_use
        falsepositives:
            - A user replacing a lost passkey
        level: low
        ---
        title: Second factor removed after a risky sign-in
        id: a8040d23-dc93-4816-b9f5-55841e31af83
        name: menshen_mfa_removed_after_risky_signin
        status: experimental
        description: A second factor of a user removed within an hour after a failed or recovery-code sign-in on the same account.
        author: Menshen project
        date: 2026-11-25
        tags:
            - attack.credential-access
            - attack.defense-evasion
            - attack.persistence
            - attack.t1556.006
        correlation:
            type: temporal_ordered
            rules:
                - menshen_risky_signin
                - menshen_mfa_factor_removed
            group-by:
                - user.name
            timespan: 1h
        falsepositives:
            - A user who mistyped the password, then removed an old passkey on purpose
            - A help-desk MFA reset for a locked-out user (which is also what social engineering of the help desk looks like)
        level: high

        """)
}

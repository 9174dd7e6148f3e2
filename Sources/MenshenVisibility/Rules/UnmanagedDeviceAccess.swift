extension BuiltInRules {
    /// T1133 External Remote Services: an access attempt from a device that is
    /// known but not managed, or from no known device to a confidential or
    /// restricted application.
    static let unmanagedDeviceAccess = SigmaRuleFile(name: "menshen_unmanaged_device_access.yml", text: """
        title: Access attempt from an unmanaged device
        id: 2428a622-cf6c-456d-b81a-111debfcafcc
        name: menshen_unmanaged_device_access
        status: experimental
        description: An access decision for a device that is not managed, or for no known device on a confidential or restricted application.
        author: Menshen project
        date: 2026-11-25
        tags:
            - attack.initial-access
            - attack.persistence
            - attack.t1133
        logsource:
            product: menshen
            category: web_resources_activity
            service: gateway
        detection:
            selection_unmanaged:
                unmapped.decision.device.managed: false
            selection_unknown_on_sensitive:
                unmapped.decision.device.known: false
                unmapped.decision.resource.classification:
                    - confidential
                    - restricted
            condition: 1 of selection_*
        falsepositives:
            - Until device identity is wired into the gateway, every request carries no device and the second selection fires on each sensitive application
        level: medium

        """)
}

/// Request validation against a schema (`Schema.validateRequest`): the principal and
/// resource types must be declared and allowed by the action's `appliesTo` (with
/// enumerated entity ids checked), the action must be declared, and the context must
/// conform to the action's context type — no undeclared attributes unless the record
/// type is open, every required attribute present, and value types matching.

extension Schema {
    /// Validates `request`. Returns nil if it is valid, else an error (code `.request`).
    public func validateRequest(_ request: Request) -> CedarError? {
        if let e = checkScopeEntity(request.principal, role: "principal") { return e }
        if let e = checkScopeEntity(request.resource, role: "resource") { return e }
        guard let action = actions[request.action] else {
            return CedarError(.request, "request's action \(request.action) is not declared in the schema")
        }
        if !action.principalTypes.contains(request.principal.type) {
            return CedarError(.request, "principal type `\(request.principal.type)` is not valid for action \(request.action)")
        }
        if !action.resourceTypes.contains(request.resource.type) {
            return CedarError(.request, "resource type `\(request.resource.type)` is not valid for action \(request.action)")
        }
        return validateContext(request.context, for: request.action)
    }

    /// Validates a context record for `action`. Returns nil if it conforms.
    public func validateContext(_ context: [String: Value], for action: EntityUID) -> CedarError? {
        guard let a = actions[action] else {
            return CedarError(.request, "request's action \(action) is not declared in the schema")
        }
        let value = Value.record(context)
        if let e = checkEntityReferences(in: value) { return e }
        if !conforms(value, to: .record(a.context)) {
            return CedarError(.request, "context \(value) is not valid for action \(action)")
        }
        return nil
    }

    private func checkScopeEntity(_ uid: EntityUID, role: String) -> CedarError? {
        guard let def = entityTypes[uid.type] else {
            return CedarError(.request, "\(role) type `\(uid.type)` is not declared in the schema")
        }
        if let choices = def.enumChoices, !choices.contains(uid.id) {
            return CedarError(.request, "entity `\(uid)` is of an enumerated entity type, but \(cedarQuoted(uid.id)) is not one of its declared choices")
        }
        return nil
    }

    private func checkEntityReferences(in v: Value) -> CedarError? {
        var stack = [v]
        var steps = 0
        while let x = stack.popLast() {
            steps += 1
            if steps > 1_000_000 { break }
            switch x {
            case .entity(let u):
                if u.type.isActionType && actions[u] == nil && entityTypes[u.type] == nil {
                    return CedarError(.request, "action \(u) in the context is not declared in the schema")
                }
                if let choices = entityTypes[u.type]?.enumChoices, !choices.contains(u.id) {
                    return CedarError(.request, "entity `\(u)` is of an enumerated entity type, but \(cedarQuoted(u.id)) is not one of its declared choices")
                }
            case .set(let s): stack.append(contentsOf: s)
            case .record(let r): stack.append(contentsOf: r.values)
            default: break
            }
        }
        return nil
    }

    /// True if `v` is a value of schema type `t`.
    public func conforms(_ v: Value, to t: SchemaType) -> Bool {
        switch (v, t) {
        case (.bool, .bool), (.long, .long), (.string, .string): return true
        case (.entity(let u), .entity(let n)): return u.type == n
        case (.set(let s), .set(let e)): return s.allSatisfy { conforms($0, to: e) }
        case (.record(let m), .record(let r)):
            for (k, x) in m {
                if let a = r.attributes[k] {
                    if !conforms(x, to: a.type) { return false }
                } else if !r.openAttributes {
                    return false
                }
            }
            for (k, a) in r.attributes where a.required && m[k] == nil { return false }
            return true
        case (.ext(let x), .ext(let n)): return x.typeName == n
        default: return false
        }
    }
}

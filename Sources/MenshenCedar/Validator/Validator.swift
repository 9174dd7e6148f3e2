/// The Cedar policy validator (strict mode, Cedar 4.x semantics).
///
/// `Validator(schema:).validate(policySet)` checks every static policy and template
/// against a `Schema` and returns a `ValidationResult` value (never throws for an
/// invalid policy):
///  - entity types, enumerated entity ids and action ids used in the policy must be
///    declared;
///  - the scope must be able to match at least one request environment allowed by
///    some action's `appliesTo` ("unable to find an applicable action");
///  - the policy condition (scope constraints `&&` when/unless clauses) is type
///    checked in every request environment (principal type × action × resource type)
///    of the schema by `PolicyTypechecker`, which follows Cedar's strict typechecker:
///    singleton boolean types with short-circuiting, capability tracking for
///    optional attributes and tags, strict least-upper-bounds for sets, `if` and
///    equality, literal-argument checks for extension constructors, and no empty set
///    literals. A policy whose condition is `false` in every environment yields an
///    "impossible policy" warning.
/// Errors and warnings carry the policy id, a source location where known, a code
/// and a message.

/// Kinds of validation diagnostics.
public enum ValidationCode: String, Sendable, Hashable {
    case unrecognizedEntityType
    case unrecognizedActionId
    case invalidEnumEntity
    case invalidActionApplication
    case unexpectedType
    case incompatibleTypes
    case unsafeAttributeAccess
    case unsafeOptionalAttributeAccess
    case unsafeTagAccess
    case noTagsAllowed
    case undefinedFunction
    case wrongNumberArguments
    case functionArgumentValidation
    case nonLitExtConstructor
    case emptySetForbidden
    case impossiblePolicy
    case internalError
}

/// One validation error or warning.
public struct ValidationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var code: ValidationCode
    public var policyID: String
    public var location: SourceLocation?
    public var message: String
    public init(code: ValidationCode, policyID: String, location: SourceLocation?, message: String) {
        self.code = code; self.policyID = policyID; self.location = location; self.message = message
    }
    public var description: String {
        "for policy `\(policyID)`\(location.map { " at \($0)" } ?? ""): \(message)"
    }
    /// As a `CedarError` (code `.validation`).
    public var asCedarError: CedarError { CedarError(.validation, "for policy `\(policyID)`, \(message)", at: location) }
}

/// The outcome of validating a policy set.
public struct ValidationResult: Sendable, Hashable {
    public var errors: [ValidationDiagnostic]
    public var warnings: [ValidationDiagnostic]
    /// True when there are no errors (warnings do not fail validation).
    public var passed: Bool { errors.isEmpty }
    public init(errors: [ValidationDiagnostic] = [], warnings: [ValidationDiagnostic] = []) {
        self.errors = errors; self.warnings = warnings
    }
}

/// Validates policies against a schema (strict mode).
public struct Validator: Sendable {
    public let schema: Schema
    let tables: SchemaTypeTables

    public init(schema: Schema) {
        self.schema = schema
        self.tables = SchemaTypeTables(schema)
    }

    /// Validates every static policy, template and template link of `policySet`.
    public func validate(_ policySet: PolicySet) -> ValidationResult {
        var result = ValidationResult()
        for p in policySet.staticPolicies + policySet.templates {
            let r = validate(policy: p)
            result.errors += r.errors
            result.warnings += r.warnings
        }
        for p in policySet.linkedPolicies {
            for (_, uid) in p.slotValues.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where !schema.isKnownEntityType(uid.type) {
                result.errors.append(ValidationDiagnostic(code: .unrecognizedEntityType, policyID: p.id, location: p.location,
                                                          message: "unrecognized entity type `\(uid.type)`"))
            }
        }
        return result
    }

    /// Validates one policy or template.
    public func validate(policy p: Policy) -> ValidationResult {
        var errors: [ValidationDiagnostic] = []
        func err(_ c: ValidationCode, _ loc: SourceLocation?, _ m: String) {
            errors.append(ValidationDiagnostic(code: c, policyID: p.id, location: loc, message: m))
        }
        // 1. Entity types, enum entities, action ids.
        let refs = PolicyReferences(policy: p)
        for (t, loc) in refs.entityTypes where !schema.isKnownEntityType(t) {
            err(.unrecognizedEntityType, loc ?? p.location, "unrecognized entity type `\(t)`")
        }
        for (uid, loc) in refs.uids {
            if uid.type.isActionType {
                if schema.actions[uid] == nil { err(.unrecognizedActionId, loc ?? p.location, "unrecognized action `\(uid)`") }
            } else if let choices = schema.entityTypes[uid.type]?.enumChoices, !choices.contains(uid.id) {
                err(.invalidEnumEntity, loc ?? p.location, "entity `\(uid)` is not one of the declared choices of enumerated entity type `\(uid.type)`")
            }
        }
        // 2. Action application.
        if !actionApplicationPossible(p) {
            err(.invalidActionApplication, p.location,
                "unable to find an applicable action given the policy scope constraints")
        }
        // 3. Type checking in every request environment.
        var warnings: [ValidationDiagnostic] = []
        let checker = PolicyTypechecker(schema: schema, tables: tables, policy: p)
        let (typeErrors, allFalse) = checker.check()
        var seen = Set<ValidationDiagnostic>()
        for e in typeErrors where seen.insert(e).inserted { errors.append(e) }
        if allFalse {
            warnings.append(ValidationDiagnostic(code: .impossiblePolicy, policyID: p.id, location: p.location,
                                                 message: "policy is impossible: the policy expression evaluates to false for all valid requests"))
        }
        return ValidationResult(errors: errors, warnings: warnings)
    }

    // MARK: scope / appliesTo

    func actionsSatisfying(_ c: ActionConstraint) -> [ActionDefinition] {
        switch c {
        case .any: return schema.sortedActionUIDs.compactMap { schema.actions[$0] }
        case .eq(let u): return schema.actions[u].map { [$0] } ?? []
        case .in(let u): return (schema.actions(in: [u]) ?? []).sorted().compactMap { schema.actions[$0] }
        case .inSet(let us): return (schema.actions(in: us) ?? []).sorted().compactMap { schema.actions[$0] }
        }
    }

    func entityTypesSatisfying(_ c: ScopeConstraint) -> Set<EntityType> {
        switch c {
        case .any, .eq(.slot), .in(.slot): return Set(schema.entityTypes.keys)
        case .eq(.uid(let u)): return [u.type]
        case .in(.uid(let u)): return schema.entityTypesIn(u.type)
        case .is(let t), .isIn(let t, .slot): return schema.isKnownEntityType(t) ? [t] : []
        case .isIn(let t, .uid(let u)): return schema.entityTypesIn(u.type).contains(t) ? [t] : []
        }
    }

    func actionApplicationPossible(_ p: Policy) -> Bool {
        let ps = entityTypesSatisfying(p.principal)
        let rs = entityTypesSatisfying(p.resource)
        for a in actionsSatisfying(p.action) {
            if !ps.isDisjoint(with: a.principalTypes) && !rs.isDisjoint(with: a.resourceTypes) { return true }
        }
        return false
    }
}

extension Schema {
    /// Cedar's `get_entity_types_in`: the descendants of `t` plus `t` itself (even if undeclared).
    func entityTypesIn(_ t: EntityType) -> Set<EntityType> {
        var s = entityTypes[t]?.descendants ?? []
        s.insert(t)
        return s
    }
}

/// Entity types and entity uids mentioned in a policy (scope and conditions).
struct PolicyReferences {
    var entityTypes: [(EntityType, SourceLocation?)] = []
    var uids: [(EntityUID, SourceLocation?)] = []

    init(policy p: Policy) {
        func scope(_ c: ScopeConstraint) {
            switch c {
            case .any, .eq(.slot), .in(.slot): break
            case .eq(.uid(let u)), .in(.uid(let u)): entityTypes.append((u.type, p.location)); uids.append((u, p.location))
            case .is(let t), .isIn(let t, .slot): entityTypes.append((t, p.location))
            case .isIn(let t, .uid(let u)):
                entityTypes.append((t, p.location)); entityTypes.append((u.type, p.location)); uids.append((u, p.location))
            }
        }
        scope(p.principal)
        switch p.action {
        case .any: break
        case .eq(let u), .in(let u): entityTypes.append((u.type, p.location)); uids.append((u, p.location))
        case .inSet(let us): for u in us { entityTypes.append((u.type, p.location)); uids.append((u, p.location)) }
        }
        scope(p.resource)
        for c in p.conditions { visit(c.body) }
    }

    private mutating func visit(_ e: Expr) {
        var stack = [e]
        while let x = stack.popLast() {
            switch x.kind {
            case .literal(let v):
                if case .entity(let u) = v { entityTypes.append((u.type, x.location)); uids.append((u, x.location)) }
            case .variable, .slot: break
            case .ifThenElse(let a, let b, let c): stack += [c, b, a]
            case .and(let a, let b), .or(let a, let b), .binary(_, let a, let b): stack += [b, a]
            case .unary(_, let a), .like(let a, _), .has(let a, _), .getAttr(let a, _): stack.append(a)
            case .isType(let a, let t, let other):
                entityTypes.append((t, x.location))
                if let o = other { stack.append(o) }
                stack.append(a)
            case .record(let entries): stack += entries.reversed().map(\.value)
            case .set(let es): stack += es.reversed()
            case .call(_, let args): stack += args.reversed()
            case .method(let r, _, let args): stack += args.reversed(); stack.append(r)
            }
        }
    }
}

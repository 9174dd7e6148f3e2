import Testing
@testable import MenshenCedar

private let validatorSchemaText = """
    entity Group;
    entity User in [Group] = {
        name: String,
        age: Long,
        nick?: String,
        boss?: User,
        friends: Set<User>,
        addr: { city: String, zip?: Long },
        ip: ipaddr,
        born: datetime,
    } tags Long;
    entity Doc = { owner: User, public: Bool } ;
    entity Color enum ["red", "green"];
    action read, write appliesTo { principal: [User], resource: [Doc], context: { mfa: Bool, level?: Long } };
    action admin in [read] appliesTo { principal: User, resource: Doc };
    action colorize appliesTo { principal: User, resource: Color };
    """

private func schema() throws -> Schema {
    switch Schema.parse(cedar: validatorSchemaText) {
    case .success(let s): return s
    case .failure(let e): throw e
    }
}

private func validate(_ text: String) throws -> ValidationResult {
    let ps = try CedarParser.parsePolicySet(text)
    return Validator(schema: try schema()).validate(ps)
}

private func codes(_ text: String) throws -> Set<ValidationCode> {
    Set(try validate(text).errors.map(\.code))
}

@Suite("Validator (strict mode)")
struct ValidatorTests {
    @Test("Well-typed policies validate", arguments: [
        #"permit(principal, action, resource);"#,
        #"permit(principal == User::"a", action == Action::"read", resource) when { principal.name == "x" && resource.owner == principal };"#,
        #"permit(principal, action in [Action::"read", Action::"write"], resource is Doc) when { action == Action::"admin" || context.mfa };"#,
        #"permit(principal, action, resource) when { principal has nick && principal.nick like "a*" };"#,
        #"permit(principal, action, resource) when { if principal has boss then principal.boss.age > 3 else false };"#,
        #"permit(principal, action, resource) unless { principal.addr has zip && principal.addr.zip == 5 };"#,
        #"permit(principal, action, resource) when { principal.friends.contains(principal) && principal in Group::"g" };"#,
        #"permit(principal, action == Action::"read", resource) when { context has level && context.level < 3 };"#,
        #"permit(principal, action, resource) when { principal.hasTag("t") && principal.getTag("t") > 1 };"#,
        #"permit(principal, action, resource) when { principal.ip.isInRange(ip("10.0.0.0/8")) && decimal("1.5").lessThan(decimal("2.0")) };"#,
        #"permit(principal, action, resource) when { principal.born < datetime("2024-01-01") && principal.born.offset(duration("1h")) > principal.born };"#,
        #"permit(principal, action, resource == Color::"red");"#,
        #"permit(principal, action, resource) when { [1, 2].containsAll([1]) && {a: 1}.a == 1 };"#,
        #"permit(principal, action, resource) when { false && principal.nope };"#,
        #"permit(principal, action, resource) when { true || principal.nope };"#,
    ])
    func valid(policy: String) throws {
        let r = try validate(policy)
        #expect(r.errors.isEmpty, "\(r.errors)")
    }

    @Test("Ill-typed policies are rejected with the expected error", arguments: [
        (#"permit(principal, action, resource) when { principal.nope };"#, ValidationCode.unsafeAttributeAccess),
        (#"permit(principal, action, resource) when { principal.nick == "a" };"#, .unsafeOptionalAttributeAccess),
        (#"permit(principal, action, resource) when { (principal has nick || true) && principal.nick == "a" };"#, .unsafeOptionalAttributeAccess),
        (#"permit(principal, action, resource) when { principal.age == "x" };"#, .incompatibleTypes),
        (#"permit(principal, action, resource) when { principal.age + "x" == 1 };"#, .unexpectedType),
        (#"permit(principal, action, resource) when { [1, "a"].contains(1) };"#, .incompatibleTypes),
        (#"permit(principal, action, resource) when { [].isEmpty() };"#, .emptySetForbidden),
        (#"permit(principal, action, resource) when { if principal.age > 1 then 1 else "a" };"#, .incompatibleTypes),
        (#"permit(principal, action, resource) when { context.mfa };"#, .unsafeAttributeAccess),
        (#"permit(principal, action, resource) when { (if principal.age > 1 then 1 else "a") == 1 };"#, .incompatibleTypes),
        (#"permit(principal, action, resource) when { principal == Nope::"x" };"#, .unrecognizedEntityType),
        (#"permit(principal, action == Action::"nope", resource);"#, .unrecognizedActionId),
        (#"permit(principal, action, resource == Color::"blue");"#, .invalidEnumEntity),
        (#"permit(principal == Doc::"d", action == Action::"read", resource);"#, .invalidActionApplication),
        (#"permit(principal, action, resource) when { principal.getTag("t") > 1 };"#, .unsafeTagAccess),
        (#"permit(principal, action, resource) when { ip("1.2.3") == ip("1.2.3.4") };"#, .functionArgumentValidation),
        (#"permit(principal, action, resource) when { ip(principal.name).isIpv4() };"#, .nonLitExtConstructor),
        (#"permit(principal, action, resource) when { principal.ip.isInRange() };"#, .wrongNumberArguments),
        (#"permit(principal, action, resource) when { principal.age like "3" };"#, .unexpectedType),
        (#"permit(principal, action, resource) when { principal.name in Group::"g" };"#, .unexpectedType),
        (#"permit(principal, action, resource) when { 1 is User };"#, .unexpectedType),
        (#"permit(principal, action, resource) when { decimal("1.0") < decimal("2.0") };"#, .unexpectedType),
        (#"permit(principal, action, resource) when { principal == resource || principal.age };"#, .unexpectedType),
    ])
    func invalid(policy: String, code: ValidationCode) throws {
        let r = try validate(policy)
        #expect(!r.errors.isEmpty)
        #expect(r.errors.contains { $0.code == code }, "\(r.errors)")
        for e in r.errors { #expect(e.policyID == "policy0") }
    }

    @Test("Errors carry the source location of the offending expression")
    func locations() throws {
        let r = try validate("permit(principal, action, resource)\nwhen { principal.nope };")
        let e = try #require(r.errors.first)
        #expect(e.location?.line == 2)
        #expect(e.location?.column == 8)
    }

    @Test("A policy that is false in every environment is only a warning")
    func impossible() throws {
        let r = try validate(#"permit(principal, action, resource) when { principal is Doc };"#)
        #expect(r.passed)
        #expect(r.warnings.contains { $0.code == .impossiblePolicy })
    }

    @Test("Capabilities flow through &&, || and if")
    func capabilities() throws {
        #expect(try codes(#"permit(principal, action, resource) when { principal has boss && principal.boss has nick && principal.boss.nick == "a" };"#).isEmpty)
        #expect(try codes(#"permit(principal, action, resource) when { (principal has nick && principal has boss) || (principal has nick) ? true : true };"#.replacingOccurrences(of: " ? true : true", with: "")).isEmpty)
        #expect(try codes(#"permit(principal, action, resource) when { ((principal has nick && principal.age > 1) || principal has nick) && principal.nick == "" };"#).isEmpty)
        #expect(try !codes(#"permit(principal, action, resource) when { (principal has nick || principal has boss) && principal.nick == "" };"#).isEmpty)
        #expect(try codes(#"permit(principal, action, resource) when { if principal has nick then principal.nick == "" else true };"#).isEmpty)
        #expect(try !codes(#"permit(principal, action, resource) when { if principal has nick then true else principal.nick == "" };"#).isEmpty)
    }

    @Test("Tag access needs hasTag, and the entity type must declare tags")
    func tags() throws {
        #expect(try codes(#"permit(principal, action, resource) when { principal.hasTag("a") && principal.getTag("a") == 1 };"#).isEmpty)
        #expect(try codes(#"permit(principal, action, resource) when { principal.hasTag("a") && principal.getTag("b") == 1 };"#) == [.unsafeTagAccess])
        #expect(try validate(#"permit(principal, action, resource) when { resource.hasTag("a") };"#).warnings.contains { $0.code == .impossiblePolicy })
    }

    @Test("Long condition chains and many clauses are typechecked without exhausting the stack")
    func longChains() throws {
        let chain = (0..<390).map { _ in "principal.age > 1" }.joined(separator: " && ")
        #expect(try codes("permit(principal, action, resource) when { \(chain) };").isEmpty)
        let orChain = (0..<390).map { _ in "principal.age > 1" }.joined(separator: " || ")
        #expect(try codes("permit(principal, action, resource) when { \(orChain) };").isEmpty)
        let clauses = (0..<300).map { _ in "when { principal.age > 1 }" }.joined(separator: " ")
        #expect(try codes("permit(principal, action, resource) \(clauses);").isEmpty)
        let tooLong = (0..<3000).map { _ in "principal.age > 1" }.joined(separator: " && ")
        if let ps = try? CedarParser.parsePolicySet("permit(principal, action, resource) when { \(tooLong) };") {
            _ = Validator(schema: try schema()).validate(ps)
        }
    }

    @Test("Policy sets report errors per policy id")
    func perPolicy() throws {
        let r = try validate("""
            permit(principal, action, resource);
            forbid(principal, action, resource) when { principal.nope };
            """)
        #expect(Set(r.errors.map(\.policyID)) == ["policy1"])
    }
}

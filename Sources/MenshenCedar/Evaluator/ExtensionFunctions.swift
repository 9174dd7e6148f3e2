/// Implementations of Cedar's extension functions and methods over `Value`s.
/// Method calls pass the receiver as the first argument.
public enum ExtensionFunctions {
    /// Calls extension function or method `name` with `args`.
    public static func call(_ name: String, _ args: [Value]) throws(CedarError) -> Value {
        func arity(_ n: Int) throws(CedarError) {
            guard args.count == n else {
                throw CedarError(.extensionError, "wrong number of arguments in extension function application: `\(name)` expects \(n), got \(args.count)")
            }
        }
        func str(_ v: Value) throws(CedarError) -> String {
            guard case .string(let s) = v else { throw typeError("string", v) }
            return s
        }
        func ip(_ v: Value) throws(CedarError) -> IPAddr {
            guard case .ext(.ipaddr(let x)) = v else { throw typeError("ipaddr", v) }
            return x
        }
        func dec(_ v: Value) throws(CedarError) -> CedarDecimal {
            guard case .ext(.decimal(let x)) = v else { throw typeError("decimal", v) }
            return x
        }
        func dt(_ v: Value) throws(CedarError) -> CedarDatetime {
            guard case .ext(.datetime(let x)) = v else { throw typeError("datetime", v) }
            return x
        }
        func dur(_ v: Value) throws(CedarError) -> CedarDuration {
            guard case .ext(.duration(let x)) = v else { throw typeError("duration", v) }
            return x
        }
        // `arity` guarantees every args[k] below is in range.
        switch name {
        case "ip":
            try arity(1)
            let s = try str(args[0])
            guard let v = IPAddr(parsing: s) else { throw CedarError(.extensionError, "error while evaluating `ipaddr` extension function: invalid IP address: \(s)") }
            return .ext(.ipaddr(v))
        case "decimal":
            try arity(1)
            let s = try str(args[0])
            guard let v = CedarDecimal(parsing: s) else { throw CedarError(.extensionError, "error while evaluating `decimal` extension function: invalid decimal literal `\(s)`") }
            return .ext(.decimal(v))
        case "datetime":
            try arity(1)
            let s = try str(args[0])
            guard let v = CedarDatetime(parsing: s) else { throw CedarError(.extensionError, "error while evaluating `datetime` extension function: invalid datetime `\(s)`") }
            return .ext(.datetime(v))
        case "duration":
            try arity(1)
            let s = try str(args[0])
            guard let v = CedarDuration(parsing: s) else { throw CedarError(.extensionError, "error while evaluating `duration` extension function: invalid duration `\(s)`") }
            return .ext(.duration(v))
        case "isIpv4": try arity(1); return .bool(try ip(args[0]).isV4)
        case "isIpv6": try arity(1); return .bool(try ip(args[0]).isV6)
        case "isLoopback": try arity(1); return .bool(try ip(args[0]).isLoopback)
        case "isMulticast": try arity(1); return .bool(try ip(args[0]).isMulticast)
        case "isInRange": try arity(2); return .bool(try ip(args[0]).isInRange(try ip(args[1])))
        case "lessThan": try arity(2); return .bool(try dec(args[0]) < dec(args[1]))
        case "lessThanOrEqual": try arity(2); return .bool(try dec(args[0]) <= dec(args[1]))
        case "greaterThan": try arity(2); return .bool(try dec(args[0]) > dec(args[1]))
        case "greaterThanOrEqual": try arity(2); return .bool(try dec(args[0]) >= dec(args[1]))
        case "offset":
            try arity(2)
            guard let r = try dt(args[0]).offset(by: try dur(args[1])) else { throw CedarError(.extensionError, "overflow while evaluating `offset`") }
            return .ext(.datetime(r))
        case "durationSince":
            try arity(2)
            guard let r = try dt(args[0]).durationSince(try dt(args[1])) else { throw CedarError(.extensionError, "overflow while evaluating `durationSince`") }
            return .ext(.duration(r))
        case "toDate":
            try arity(1)
            guard let r = try dt(args[0]).toDate() else { throw CedarError(.extensionError, "overflow while evaluating `toDate`") }
            return .ext(.datetime(r))
        case "toTime": try arity(1); return .ext(.duration(try dt(args[0]).toTime()))
        case "toMilliseconds": try arity(1); return .long(try dur(args[0]).toMilliseconds)
        case "toSeconds": try arity(1); return .long(try dur(args[0]).toSeconds)
        case "toMinutes": try arity(1); return .long(try dur(args[0]).toMinutes)
        case "toHours": try arity(1); return .long(try dur(args[0]).toHours)
        case "toDays": try arity(1); return .long(try dur(args[0]).toDays)
        default:
            throw CedarError(.extensionError, "unknown extension function `\(name)`")
        }
    }

    static func typeError(_ expected: String, _ got: Value) -> CedarError {
        CedarError(.typeError, "type error: expected \(expected), got \(got.typeName)")
    }
}

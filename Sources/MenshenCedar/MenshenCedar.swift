/// MenshenCedar — the Cedar policy language (cedarpolicy.com, version 4.x semantics).
///
/// This module is the policy decision core of Menshen: lexer/parser, AST, values,
/// extension types (ipaddr, decimal, datetime, duration), entities, evaluator,
/// authorizer and policy index. It performs **no I/O** (callers hand it text and
/// get values back) and reads no clock. It is written by hand because no Swift
/// package implements Cedar.
///
/// JSON (entities, contexts, `__extn`/`__entity` escapes) is read by a small
/// hand-written reader (`JSONValue.parse`) with input-size and nesting limits,
/// so that untrusted input cannot exhaust the stack or memory, integers stay exact
/// `Int64`, and duplicate keys can be reported.
public enum MenshenCedar {
    /// Limits applied to untrusted input.
    public enum Limits {
        /// Maximum nesting depth of expressions accepted by the parser and of JSON documents.
        public static let maxNestingDepth = 200
        /// Maximum size of a policy or JSON text, in UTF-8 bytes (16 MiB).
        public static let maxInputBytes = 16 * 1024 * 1024
        /// Maximum evaluation recursion depth.
        public static let maxEvaluationDepth = 400
    }
}

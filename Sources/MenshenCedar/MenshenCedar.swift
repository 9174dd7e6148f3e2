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
        /// Maximum nesting depth (parenthesized/bracketed sub-expressions, `if` branches) accepted
        /// by the parser, and of JSON documents.
        ///
        /// Stack budget: these limits keep parsing and evaluation within ~512 KiB of stack in
        /// release builds (the smallest common thread stack); debug builds use several times more.
        /// Long `||`/`&&` allow-lists are better written as set literals with `.contains`.
        public static let maxNestingDepth = 200
        /// Maximum size of a policy or JSON text, in UTF-8 bytes (16 MiB).
        public static let maxInputBytes = 16 * 1024 * 1024
        /// Maximum height of a parsed expression tree (operator chains such as `a || b || …`
        /// count too), so that recursive consumers (evaluator, validator, formatter) stay bounded.
        public static let maxExpressionDepth = 200
        /// Maximum number of operands in one `&&` or `||` chain.
        public static let maxChainLength = 1000
        /// Maximum evaluation recursion depth (also guards programmatically built trees).
        public static let maxEvaluationDepth = 250
    }
}

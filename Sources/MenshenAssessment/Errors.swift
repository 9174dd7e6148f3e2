/// What can go wrong in an assessment. Every message names the input at fault.
public enum AssessmentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The principle catalog is malformed.
    case catalog(String)
    /// An attestation or its evidence file is refused.
    case attestation(String)
    /// An evidence pack could not be written or does not verify.
    case evidencePack(String)
    /// A report could not be rendered.
    case render(String)

    public var description: String {
        switch self {
        case .catalog(let m): "principle catalog: \(m)"
        case .attestation(let m): "attestation: \(m)"
        case .evidencePack(let m): "evidence pack: \(m)"
        case .render(let m): "report: \(m)"
        }
    }
}

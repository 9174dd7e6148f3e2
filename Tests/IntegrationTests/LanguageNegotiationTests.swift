@testable import MenshenServer
import Testing

/// Which language the portal and the gateway's pages answer in: `?lang=` first, then
/// `Accept-Language` as RFC 9110 §12.5.4 reads it, else zh-TW.
@Suite("UI language negotiation")
struct LanguageNegotiationTests {
    @Test("Accept-Language: the highest weight wins; q=0 means not acceptable; malformed weights drop their range",
          arguments: [
              ("en", UILanguage.en), ("en-GB,en;q=0.9", .en), ("zh-TW,zh;q=0.9,en;q=0.8", .zhTW),
              ("en;q=0.5, zh-Hant-TW;q=0.6", .zhTW), ("fr, en;q=0.1", .en),
              // Not acceptable: English with weight 0 is never chosen.
              ("en;q=0", .zhTW), ("en;q=0.000", .zhTW), ("zh;q=0, en;q=0", .zhTW), ("zh-TW;q=0, en;q=0.001", .en),
              // Equal weights: the first listed.
              ("en;q=0.5, zh;q=0.5", .en), ("zh;q=0.5, en;q=0.5", .zhTW),
              // Malformed or out-of-range weights drop that range (not taken as 1 or as a huge weight).
              ("zh;q=0.4, en;q=2", .zhTW), ("zh;q=0.4, en;q=1.5", .zhTW), ("zh;q=0.4, en;q=0.1234", .zhTW),
              ("zh;q=0.4, en;q=nan", .zhTW), ("zh;q=0.4, en;q=inf", .zhTW), ("zh;q=0.4, en;q=-1", .zhTW), ("zh;q=0.4, en;q=", .zhTW),
              ("zh;q=0.4, en;q=1.000", .en), ("zh;q=0.4, en;q=1.", .en),
              // Only whole primary tags: "eno" is not English, "zha" is not Chinese.
              ("eno", .zhTW), ("zha, en;q=0.2", .en),
              ("", .zhTW), ("*", .zhTW),
          ])
    func acceptLanguage(header: String, expected: UILanguage) {
        #expect(UILanguage.negotiate(query: nil, acceptLanguage: header) == expected, "\(header)")
    }

    @Test("?lang= comes first; no header means zh-TW; an oversized header is not read")
    func queryAndDefaults() {
        #expect(UILanguage.negotiate(query: "en", acceptLanguage: "zh-TW") == .en)
        #expect(UILanguage.negotiate(query: "zh-TW", acceptLanguage: "en") == .zhTW)
        #expect(UILanguage.negotiate(query: nil, acceptLanguage: nil) == .zhTW)
        #expect(UILanguage.negotiate(query: nil, acceptLanguage: String(repeating: "fr;q=0.1, ", count: 200) + "en") == .zhTW)
    }

    @Test("qvalue grammar", arguments: [("0", 0.0), ("1", 1.0), ("0.5", 0.5), ("0.125", 0.125), ("1.0", 1.0), ("0.", 0.0)])
    func qvalues(text: String, value: Double) {
        #expect(UILanguage.qvalue(Substring(text)) == value)
    }
}

/// The `WWW-Authenticate` challenge every 401 carries: a quoted-string of visible ASCII whatever the values hold.
@Suite("WWW-Authenticate challenge")
struct ChallengeTests {
    @Test("quotes and backslashes escaped; controls and non-ASCII percent-encoded (no header injection)")
    func quoting() {
        #expect(GatewayPages.challenge([("realm", "menshen"), ("sign_in", "https://p.example/signin?return=%2F")])
                == #"Menshen realm="menshen", sign_in="https://p.example/signin?return=%2F""#)
        #expect(GatewayPages.challenge([("x", "a\"b\\c\r\nSet-Cookie: y\u{7F}é")]) == #"Menshen x="a\"b\\c%0D%0ASet-Cookie: y%7F%C3%A9""#)
    }
}

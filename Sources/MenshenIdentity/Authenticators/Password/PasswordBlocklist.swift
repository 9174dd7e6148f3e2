/// A modest blocklist of common and predictable passwords, assembled for
/// Menshen from obvious patterns (it is not a copy of any published list):
/// keyboard walks, digit runs, dictionary favourites, Taiwanese/Chinese
/// favourites (pinyin, 520/1314 numerology), bank words, and each of those
/// with the usual suffixes (years, `1`, `123`, `!`, …). Entries are lower
/// case; lookups fold case after NFKC. Deployments should add a breached-
/// password corpus (k-anonymity API or offline list) at the web layer.
enum PasswordBlocklist {
    static let baseWords: [String] = [
        // generic
        "password", "passw0rd", "p@ssw0rd", "p@ssword", "pass", "passwd", "letmein", "welcome", "welcome1",
        "admin", "administrator", "root", "login", "master", "secret", "changeme", "default", "guest",
        "test", "testing", "user", "qwerty", "qwertz", "azerty", "abc", "abcd", "abcde", "abcdef",
        "iloveyou", "loveyou", "love", "lovely", "princess", "sunshine", "monkey", "dragon", "football",
        "baseball", "basketball", "soccer", "superman", "batman", "starwars", "pokemon", "michael",
        "jennifer", "jordan", "shadow", "freedom", "whatever", "trustno1", "hello", "hellokitty",
        "flower", "summer", "winter", "spring", "autumn", "cookie", "chocolate", "cheese", "computer",
        "internet", "samsung", "iphone", "google", "facebook", "apple", "banana", "orange", "secure",
        "security", "access", "matrix", "killer", "ninja", "mustang", "harley", "ranger", "hunter",
        "tigger", "charlie", "thomas", "daniel", "andrew", "joshua", "maggie", "ginger", "pepper",
        // Taiwan / Chinese favourites
        "woaini", "woaini1314", "woaini520", "aini1314", "wo2ni", "520520", "5201314", "1314520",
        "taiwan", "taipei", "kaohsiung", "taichung", "tainan", "formosa", "bubbletea", "zhongguo",
        "china", "beijing", "shanghai", "xiaoming", "zhang", "wang", "chen", "lin", "huang", "liu",
        "li", "wu", "tsai", "yang", "woshishui", "nihao", "laopo", "laogong", "baobei", "qinai",
        "tianshi", "xingfu", "kuaile", "aiai", "meimei", "gege", "jiejie", "didi", "88888888",
        "66666666", "168168", "518518", "888888", "666666", "147258369", "159357", "qwe123",
        "asd123", "zxc123", "qweasd", "qweasdzxc", "1qaz2wsx", "1q2w3e4r", "1q2w3e", "zaq12wsx",
        "a123456", "aa123456", "abc123", "abc12345", "a12345678", "qwe123456", "abc123456", "a123456789",
        // banking and workplace
        "bank", "banking", "money", "finance", "account", "company", "office", "customer", "service",
        "welcome123", "changeit", "temp", "temporary", "newpassword", "mypassword", "p4ssword",
    ]

    static let keyboardWalks: [String] = [
        "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwerty123", "qwertyui", "asdfgh", "asdfghjk", "zxcvbn",
        "1qaz2wsx3edc", "qazwsx", "qazwsxedc", "1234qwer", "qwer1234", "asdf1234", "zxcv1234",
        "!qaz2wsx", "!@#$%^&*", "!@#$%^", "1q2w3e4r5t", "q1w2e3r4", "poiuytrewq", "mnbvcxz",
    ]

    static let suffixes: [String] = ["", "1", "12", "123", "1234", "12345", "!", "1!", "123!", "01", "88", "520", "1314", "2024", "2025", "2026", "@123"]

    static let all: Set<String> = {
        var set = Set<String>()
        // Digit runs and repeats.
        let digits = Array("1234567890")
        for length in 6...12 {
            set.insert(String((0..<length).map { digits[$0 % 10] }))
            set.insert(String((0..<length).map { digits[(9 - $0 % 10 + 9) % 10] }))  // 0987654321…
            set.insert(String(String((0..<length).map { digits[$0 % 10] }).reversed()))
        }
        for digit in "0123456789" {
            for length in 6...12 { set.insert(String(repeating: digit, count: length)) }
        }
        // Years and dates people use (birthdays as yyyymmdd are too many to list; years are not).
        for year in 1950...2030 {
            set.insert("\(year)")
            set.insert("password\(year)")
            set.insert("taiwan\(year)")
        }
        for word in baseWords + keyboardWalks {
            for suffix in suffixes { set.insert(word + suffix) }
            set.insert(word + word)
        }
        return set
    }()

    static func contains(_ foldedPassword: String) -> Bool {
        all.contains(foldedPassword)
    }
}

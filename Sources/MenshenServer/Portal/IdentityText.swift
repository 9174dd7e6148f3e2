/// Every string of the sign-in, account and step-up pages, in Traditional
/// Chinese and English. Messages never say whether an account exists.
struct IdentityText {
    let signInTitle, userName, password, signIn, orPasskey, passkeySignIn, working, ceremonyFailed: String
    let failed, throttled, badRequest, badRequestTitle, formExpired: String
    let secondFactorTitle, secondFactorIntro, usePasskey, totpCode, verify, recoveryCode, useRecovery: String
    let accountTitle, signedInAs, assurance, methods, passkeys, noPasskeys, addPasskey, passkeyLabel, remove: String
    let authenticatorApp, enrolTOTP, totpEnrolled, totpScan, totpManual, totpWrong, recoveryCodes, recoveryRemaining: String
    let regenerateRecovery, recoveryShown, setPassword, newPassword, passwordSaved, signOut, finishEnrolment, enrolmentSession: String
    let stepUpTitle, stepUpIntro, stepUpWeak, stepUpFailed, passwordProblemShort, passwordProblemLong, passwordProblemCommon: String
    let passwordProblemName, enrolStart, passkeyAdded, signInAgain, changesNeedFreshFactor, lastUsed, never, cloneWarning: String
    let activeRoles, privilegedMode, startPrivileged, endPrivileged: String
    let signInWith, orFederated, idpUnavailable, federationFailed: String
    /// Step-up at the session's identity provider: the button (followed by the provider's name), and why one was refused.
    let stepUpAtProvider, stepUpNotFresh, stepUpOtherAccount, stepUpAgain, stepUpProviderWeak: String
    let otherHostTitle, otherHostIntro, otherHostAdvice, goToPortal: String
    let noStepUpMethod, enrolMethods: String
    /// The requirement is above what any method of this portal can give (the enrolment level caps it): the two levels.
    let stepUpOutOfReach: (Int, Int) -> String

    init(_ lang: UILanguage) {
        switch lang {
        case .zhTW:
            signInTitle = "登入"; userName = "帳號"; password = "密碼"; signIn = "登入"; orPasskey = "或使用通行金鑰（免輸入帳號）"
            passkeySignIn = "以通行金鑰登入"; working = "請依瀏覽器或安全金鑰的指示操作…"; ceremonyFailed = "通行金鑰驗證未完成，請再試一次。"
            failed = "帳號或驗證資料不正確。"; throttled = "嘗試次數過多，請稍候再試。"
            badRequest = "無法處理此請求，未做任何變更。"; badRequestTitle = "請求無效"; formExpired = "表單已逾時，請重新操作。"
            secondFactorTitle = "第二道驗證"; secondFactorIntro = "請選擇一種方式完成多因子驗證。"
            usePasskey = "使用通行金鑰或安全金鑰"; totpCode = "驗證器 App 的 6 位數代碼"; verify = "驗證"
            recoveryCode = "備用復原碼"; useRecovery = "使用復原碼"
            accountTitle = "帳號與驗證方式"; signedInAs = "目前登入帳號"; assurance = "驗證保證等級"; methods = "驗證方式"
            passkeys = "通行金鑰與安全金鑰"; noPasskeys = "尚未註冊通行金鑰。"; addPasskey = "註冊新的通行金鑰"; passkeyLabel = "名稱（例如：YubiKey、公司筆電）"
            remove = "移除"; authenticatorApp = "驗證器 App（TOTP）"; enrolTOTP = "設定驗證器 App"; totpEnrolled = "已設定"
            totpScan = "請以驗證器 App 掃描 QR code，再輸入顯示的代碼。"; totpManual = "無法掃描時，請手動輸入金鑰："
            totpWrong = "代碼不正確，請再試一次。"; recoveryCodes = "備用復原碼"; recoveryRemaining = "剩餘可用"
            regenerateRecovery = "產生新的復原碼"; recoveryShown = "請妥善保存以下復原碼；每組只能使用一次，且不會再次顯示。"
            setPassword = "設定密碼"; newPassword = "新密碼（至少 8 個字元，可使用空白與中文）"; passwordSaved = "密碼已更新。"
            signOut = "登出"; finishEnrolment = "完成註冊並前往登入"; enrolmentSession = "您正在使用一次性註冊連結：請設定密碼並註冊通行金鑰。"
            stepUpTitle = "需要再次驗證"; stepUpIntro = "此操作需要更高的驗證保證等級或最近完成的驗證。"
            stepUpWeak = "此驗證方式不足以滿足此操作的要求，請使用通行金鑰。"; stepUpFailed = "驗證未通過。"
            passwordProblemShort = "密碼太短。"; passwordProblemLong = "密碼太長。"; passwordProblemCommon = "這是常見或已外洩的密碼，請換一個。"
            passwordProblemName = "密碼不可包含帳號或姓名。"; enrolStart = "開始註冊"; passkeyAdded = "已註冊通行金鑰。"
            signInAgain = "請重新登入。"; changesNeedFreshFactor = "變更驗證方式前，請先再次驗證身分。"; lastUsed = "最後使用"; never = "從未"
            cloneWarning = "此金鑰的簽章計數曾倒退，可能遭複製，已停止使用。"
            activeRoles = "本次連線使用的角色"; privilegedMode = "特權作業模式"
            startPrivileged = "切換至特權作業（需再次驗證）"; endPrivileged = "結束特權作業"
            signInWith = "使用"; orFederated = "或以所屬機構的帳號登入："
            idpUnavailable = "目前無法連線至該身分提供者，請稍後再試。"; federationFailed = "外部身分提供者的登入未通過驗證，請重新登入。"
            stepUpAtProvider = "前往身分提供者重新驗證："; stepUpNotFresh = "身分提供者沒有要求您重新登入，因此無法確認是您本人剛剛完成驗證。請再試一次；若仍發生，請聯絡系統管理員。"
            stepUpOtherAccount = "您在身分提供者登入的帳號與目前的工作階段不同，未提升驗證等級。"; stepUpAgain = "再試一次"
            stepUpProviderWeak = "您在身分提供者的登入方式未達此操作要求的驗證等級；請改用更強的方式登入身分提供者，或聯絡系統管理員。"
            otherHostTitle = "已登入，但無法前往該應用系統"; otherHostIntro = "您已登入。您要前往的應用系統位於另一個主機名稱："
            otherHostAdvice = "登入工作階段只會送往本入口網站的主機名稱，因此該應用系統看不到您的登入狀態。請聯絡系統管理員，將應用系統設定於本入口網站的主機名稱之下。"
            goToPortal = "前往入口網站首頁"
            noStepUpMethod = "您的帳號沒有可在此再次驗證的方式（通行金鑰或驗證器 App）。請先在「帳號與驗證方式」註冊其中一種，或登出後重新登入；若仍無法使用，請聯絡系統管理員。"
            stepUpOutOfReach = { need, most in "此應用系統要求身分驗證等級 LoA \(need)，而本入口的任何驗證方式最高只能達到 LoA \(most)\(need == 4 ? "（LoA 4 需臨櫃身分查驗並由機構核發的硬體金鑰）" : "")。在此再次驗證也無法達到；請聯絡系統管理員。" }
            enrolMethods = "前往帳號與驗證方式"
        case .en:
            signInTitle = "Sign in"; userName = "User name"; password = "Password"; signIn = "Sign in"; orPasskey = "Or use a passkey (no user name needed)"
            passkeySignIn = "Sign in with a passkey"; working = "Follow your browser's or security key's prompt…"
            ceremonyFailed = "The passkey check did not complete. Please try again."
            failed = "The user name or the credentials are not correct."; throttled = "Too many attempts. Please wait and try again."
            badRequest = "The request could not be processed. Nothing was changed."; badRequestTitle = "Bad request"
            formExpired = "The form has expired. Please try again."
            secondFactorTitle = "Second factor"; secondFactorIntro = "Choose one way to complete multi-factor authentication."
            usePasskey = "Use a passkey or security key"; totpCode = "6-digit code from your authenticator app"; verify = "Verify"
            recoveryCode = "Recovery code"; useRecovery = "Use a recovery code"
            accountTitle = "Account and sign-in methods"; signedInAs = "Signed in as"; assurance = "Level of assurance"; methods = "Methods"
            passkeys = "Passkeys and security keys"; noPasskeys = "No passkey registered yet."; addPasskey = "Register a new passkey"
            passkeyLabel = "Name (e.g. YubiKey, work laptop)"; remove = "Remove"; authenticatorApp = "Authenticator app (TOTP)"
            enrolTOTP = "Set up an authenticator app"; totpEnrolled = "Set up"
            totpScan = "Scan the QR code with your authenticator app, then enter the code it shows."
            totpManual = "If you cannot scan, enter this key by hand:"; totpWrong = "That code is not correct. Please try again."
            recoveryCodes = "Recovery codes"; recoveryRemaining = "remaining"; regenerateRecovery = "Generate new recovery codes"
            recoveryShown = "Keep these recovery codes safe. Each works once, and they will not be shown again."
            setPassword = "Set password"; newPassword = "New password (at least 8 characters; spaces and any script allowed)"
            passwordSaved = "Password updated."; signOut = "Sign out"; finishEnrolment = "Finish enrolment and sign in"
            enrolmentSession = "You are using a one-time enrolment link: set a password and register a passkey."
            stepUpTitle = "Verify again"; stepUpIntro = "This action needs a higher level of assurance or a recent verification."
            stepUpWeak = "That method is not strong enough for this action. Please use a passkey."; stepUpFailed = "Verification failed."
            passwordProblemShort = "The password is too short."; passwordProblemLong = "The password is too long."
            passwordProblemCommon = "That password is common or known to be breached. Choose another."
            passwordProblemName = "The password must not contain your user name or name."; enrolStart = "Start enrolment"
            passkeyAdded = "Passkey registered."; signInAgain = "Please sign in again."
            changesNeedFreshFactor = "Verify your identity again before changing sign-in methods."; lastUsed = "Last used"; never = "never"
            cloneWarning = "This key's signature counter went backwards; it may have been cloned and is no longer accepted."
            activeRoles = "Roles in this session"; privilegedMode = "privileged work"
            startPrivileged = "Switch to privileged work (verify again)"; endPrivileged = "End privileged work"
            signInWith = "Sign in with"; orFederated = "Or sign in with your organisation's account:"
            idpUnavailable = "That identity provider cannot be reached right now. Please try again later."
            federationFailed = "The sign-in through the external identity provider could not be verified. Please sign in again."
            stepUpAtProvider = "Verify again at"; stepUpNotFresh = "The identity provider did not ask you to sign in again, so it cannot be shown that you just verified. Please try again; if it happens again, contact your administrator."
            stepUpOtherAccount = "You signed in at the identity provider with another account than this session's; the session was not raised."; stepUpAgain = "Try again"
            stepUpProviderWeak = "The way you signed in at the identity provider does not reach the level this action needs; sign in there with a stronger method, or contact your administrator."
            otherHostTitle = "Signed in, but that application is out of reach"; otherHostIntro = "You are signed in. The application you were going to is on another host name:"
            otherHostAdvice = "The sign-in session is sent only to this portal's host name, so that application cannot see that you are signed in. Ask your administrator to put the application under this portal's host name."
            goToPortal = "Go to the portal's home page"
            noStepUpMethod = "Your account has no method to verify again here (a passkey or an authenticator app). Register one under your account's sign-in methods, or sign out and sign in again; if that does not help, contact your administrator."
            stepUpOutOfReach = { need, most in "This application requires assurance level LoA \(need), and no sign-in method of this portal gives more than LoA \(most)\(need == 4 ? " (LoA 4 needs in-person identity proofing and a hardware key issued by your institution)" : ""). Verifying again here cannot reach it; contact your administrator." }
            enrolMethods = "Go to your sign-in methods"
        }
    }
}

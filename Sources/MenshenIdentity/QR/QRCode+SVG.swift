import Foundation

extension QRCode {
    /// A standalone SVG document (no script, no external references, no
    /// styles), so it can be served as `image/svg+xml` or embedded as an
    /// `<img src="data:image/svg+xml;base64,…">` under a strict CSP.
    ///
    /// - Parameters:
    ///   - moduleSize: pixels per module in the width/height attributes.
    ///   - quietZone: light modules around the symbol (the spec asks for 4).
    public func svg(moduleSize: Int = 6, quietZone: Int = 4) -> String {
        let side = size + 2 * quietZone
        var path = ""
        for y in 0..<size {
            var x = 0
            while x < size {
                guard isDark(x: x, y: y) else { x += 1; continue }
                var run = 1
                while isDark(x: x + run, y: y) { run += 1 }
                path += "M\(x + quietZone) \(y + quietZone)h\(run)v1h-\(run)z"
                x += run
            }
        }
        let pixels = side * max(1, moduleSize)
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(pixels)\" height=\"\(pixels)\" "
            + "viewBox=\"0 0 \(side) \(side)\" shape-rendering=\"crispEdges\">"
            + "<rect width=\"\(side)\" height=\"\(side)\" fill=\"#ffffff\"/>"
            + "<path d=\"\(path)\" fill=\"#000000\"/></svg>"
    }
}

extension QRCode {
    /// `data:image/svg+xml;base64,…` for an `<img src>` under a CSP with `img-src data:`.
    public func svgDataURI(moduleSize: Int = 6, quietZone: Int = 4) -> String {
        "data:image/svg+xml;base64," + Data(svg(moduleSize: moduleSize, quietZone: quietZone).utf8).base64EncodedString()
    }
}

import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// No cookie jar: the bench is a bearer-token client (cookies without an Origin are refused).
let session: URLSession = {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpShouldSetCookies = false
    configuration.httpCookieAcceptPolicy = .never
    configuration.httpMaximumConnectionsPerHost = 64
    return URLSession(configuration: configuration)
}()

/// One request; the status and the JSON object of the answer (empty when it is not one).
func http(_ method: String, _ url: String, token: String? = nil, body: String? = nil) async -> (Int, [String: Any]) {
    let (status, data) = await httpData(method, url, token: token, body: body)
    return (status, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:])
}

/// One request; the status and the answer's bytes.
func httpData(_ method: String, _ url: String, token: String? = nil, body: String? = nil) async -> (Int, Data) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    if let body {
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
    }
    return await withCheckedContinuation { continuation in
        session.dataTask(with: request) { data, response, _ in
            continuation.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
        }.resume()
    }
}

/// `transform` over `items`, `width` at a time, results in order.
func concurrentMap<Element: Sendable>(_ items: Range<Int>, width: Int, _ transform: @escaping @Sendable (Int) async throws -> Element) async throws -> [Element]
{
    try await withThrowingTaskGroup(of: (Int, Element).self) { group in
        var results = [Element?](repeating: nil, count: items.count)
        var iterator = items.makeIterator()
        for _ in 0..<width { if let index = iterator.next() { group.addTask { (index, try await transform(index)) } } }
        while let (index, value) = try await group.next() {
            results[index - items.lowerBound] = value
            if let next = iterator.next() { group.addTask { (next, try await transform(next)) } }
        }
        return results.map { $0! }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

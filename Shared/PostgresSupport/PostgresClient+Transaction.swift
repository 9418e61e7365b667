import Logging
import PostgresNIO

extension PostgresClient {
    /// `withTransaction`, but the closure's own error comes out as itself (PostgresNIO wraps it in
    /// `PostgresTransactionError`), so an API error or a decoding error thrown inside keeps its
    /// meaning. Begin, commit and rollback failures still surface as the wrapper.
    public func transaction<Result>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await withTransaction(logger: logger, body)
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError {
                if let rollbackError = error.rollbackError {
                    logger.warning("rollback failed", metadata: ["error": "\(String(reflecting: rollbackError))"])
                }
                throw closureError
            }
            throw error
        }
    }
}

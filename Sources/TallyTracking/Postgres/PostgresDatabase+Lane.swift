import Dispatch
import Logging
import NIOCore
import PostgresNIO
import Synchronization

extension PostgresDatabase {
    /// Concurrent callers' writes sent to PostgreSQL together (group commit), on connections of its own: while a
    /// batch is in flight the writes that arrive wait, and the moment its answer comes in, the thread that read it
    /// sends the next batch with all of them as one statement, then hands the reading of its answer to that batch's
    /// first caller (each connection is driven by its callers, see ``DrivenChannel``). A caller alone waits for
    /// nothing: its batch is itself, one trip as on the pool. Under load, where the server and the database
    /// are short of CPU, one statement, one commit and one round trip serve several requests.
    ///
    /// - The first connection sends whatever waits; a second one is used only when ``spill`` writes wait while the
    ///   first is busy, so under load it adds batches where they pay (two cores of a database), not round trips.
    /// - At most one write per key is in flight on all the lane's connections (a batch's answers are told apart by key,
    ///   one run's writes stay in order, and two batches never wait for each other's rows); a later one waits.
    /// - A batch the database refuses (any error with a SQLSTATE: a constraint, text it cannot hold, a deadlock, a
    ///   lock not granted within ``laneLockTimeout``) is written again one write at a time, each by its own caller on
    ///   the pool, so a write only ever fails for its own reasons. The lock timeout keeps a batch stuck behind
    ///   another transaction's row lock from holding the others back.
    /// - A lost connection fails the batch in flight, as it would each write on the pool; the writes waiting go to
    ///   the pool, and the next write connects again. A connection that cannot be made sends the lane's writes to the
    ///   pool (which retries with backoff) for ``laneRetryNanos``.
    final class Lane<Op: Sendable, Outcome: Sendable>: Sendable {
        /// A batch's statement.
        typealias Build = @Sendable ([Op]) throws -> Connection.Statement
        /// A batch's outcomes from the statement's rows: one per op, in order.
        typealias Read = @Sendable ([[SQLValue]], [Op]) -> [Outcome]

        /// One caller's write.
        final class Request: Sendable {
            let op: Op
            let key: String
            private let ready = DispatchSemaphore(value: 0)
            /// What it was told, and whether its caller sleeps in ``wait(seconds:)`` (only such a caller is made a
            /// batch's reader: one busy reading or connecting elsewhere would leave the batch unread meanwhile).
            private let answer = Mutex<(told: Answer?, parked: Bool)>((nil, false))

            init(_ op: Op, key: String) {
                self.op = op
                self.key = key
            }

            /// What the caller is told.
            enum Answer: Sendable {
                /// Its batch was written: its outcome, or the error that failed the batch.
                case done(Result<Outcome, any Error>)
                /// Its batch was refused, or never sent: it writes alone, on the pool.
                case alone
                /// Its batch was sent on this connection, the lane's `slot`: the caller reads it until its batch is
                /// answered.
                case drive(Pooled, slot: Int)
            }

            func tell(_ a: Answer) {
                answer.withLock { $0.told = a }
                ready.signal()
            }

            /// Tells the caller to read its batch's answer on `p`, if it sleeps waiting and was told nothing yet;
            /// whether it was told.
            func lead(_ p: Pooled, slot: Int) -> Bool {
                let told = answer.withLock { a in
                    guard a.parked, a.told == nil else { return false }
                    a.told = .drive(p, slot: slot)
                    return true
                }
                if told { ready.signal() }
                return told
            }

            /// What the caller was told last (`nil`: nothing yet).
            var told: Answer? { answer.withLock { $0.told } }

            /// The outcome, once its batch is answered (or refused); `nil` before.
            var settled: Answer? {
                answer.withLock { a in
                    if case .drive = a.told { return nil }
                    return a.told
                }
            }

            /// Sleeps until the caller is told something (at once when it was told something it has not waited for);
            /// `false` when nothing came within `seconds`.
            func wait(seconds: Int64) -> Bool {
                answer.withLock { $0.parked = true }
                defer { answer.withLock { $0.parked = false } }
                return ready.wait(timeout: .now() + .seconds(Int(seconds))) == .success
            }
        }

        private struct State {
            var queue: [Request] = []
            /// Each connection of the lane, whether a batch is in flight on it (or it is being connected), and a batch
            /// in flight that no caller was made the reader of (none slept waiting): the thread that sent it reads it.
            var slots: [(pooled: Pooled?, busy: Bool, unread: Request?)]
            /// The keys of the writes in flight on any connection: a key's next write waits for them.
            var inFlight = Set<String>()
            /// Until when (monotonic nanoseconds) writes go straight to the pool: the lane could not connect.
            var downUntil: UInt64 = 0
        }

        private let state: Mutex<State>
        /// Batches sent, the writes they held, and writes run alone on the pool (tests, benchmarks).
        let batchesSent = Atomic<Int>(0), writesSent = Atomic<Int>(0), writesAlone = Atomic<Int>(0)
        let database: PostgresDatabase
        /// The most writes in one batch.
        let maxBatch: Int
        /// How many writes must wait before a connection other than the first sends them.
        let spill: Int
        private let build: Build
        private let read: Read

        /// - Parameter connections: the most batches in flight at once, each on a connection of its own.
        init(_ database: PostgresDatabase, connections: Int = 2, maxBatch: Int = 64, spill: Int = 2, build: @escaping Build, read: @escaping Read) {
            precondition(maxBatch >= 1 && connections >= 1, "a batch holds at least one write, on at least one connection")
            self.database = database
            self.maxBatch = maxBatch
            self.spill = spill
            self.build = build
            self.read = read
            state = Mutex(State(slots: Array(repeating: (nil, false, nil), count: connections)))
        }

        deinit {
            close()
        }

        /// How many writes wait to be sent (tests).
        var waiting: Int { state.withLock { $0.queue.count } }

        /// Closes the lane's connections (a write after this connects again).
        func close() {
            let open = state.withLock { s in
                defer { for i in s.slots.indices { s.slots[i].pooled = nil } }
                return s.slots.compactMap(\.pooled)
            }
            for p in open { p.close() }
        }

        /// Writes `op` in a batch with whatever writes wait beside it; its outcome.
        func submit(_ op: Op, key: String) throws -> Outcome {
            let me = Request(op, key: key)
            let now = DispatchTime.now().uptimeNanoseconds
            if state.withLock({ now < $0.downUntil }) { return try alone(op) }
            let start = state.withLock { s -> (slot: Int, pooled: Pooled?, batch: [Request])? in
                s.queue.append(me)
                // The first connection takes whatever waits; another only several writes, so it adds batches, not trips.
                guard let i = s.slots.firstIndex(where: { !$0.busy }), i == 0 || s.queue.count >= spill else { return nil }
                let batch = take(&s)
                guard !batch.isEmpty else { return nil }  // every write waiting is of a key in flight: its batch takes them
                s.slots[i].busy = true
                return (i, s.slots[i].pooled, batch)
            }
            if let start {
                let p: Pooled
                do {
                    p = try open(start.pooled, slot: start.slot)
                } catch {
                    // No connection: the batch and the writes queued meanwhile go to the pool (which reports the
                    // failure as it finds it), and so do the lane's writes for the next second.
                    let waiting = state.withLock { s in
                        defer {
                            s.queue = []
                            s.slots[start.slot].busy = false
                            s.inFlight.subtract(start.batch.map(\.key))
                            s.downUntil = DispatchTime.now().uptimeNanoseconds + PostgresDatabase.laneRetryNanos
                        }
                        return s.queue
                    }
                    for r in start.batch + waiting where r !== me { r.tell(.alone) }
                    return try alone(op)
                }
                // The batch's reader is the caller that sent it, whether or not its own write is in it (a write of a
                // key in flight stays queued while the batch takes those behind it).
                p.channel.loop.run { send(start.batch, slot: start.slot, on: p) }
                read(start.batch[0], slot: start.slot, on: p)
            }
            // Every batch in flight has a reader, bounded by the connection's deadline: a write still queued after that
            // and 10 s more is withdrawn (never sent) and fails; one already sent waits for its batch's answer.
            let unanswered = PostgresError(NoAnswer(timeout: database.answerTimeout + .seconds(10)), sql: nil)
            while true {
                switch me.told {
                case .done(let outcome)?: return try outcome.get()
                case .alone?: return try alone(op)
                case .drive(let p, let slot)?:
                    read(me, slot: slot, on: p)
                    guard me.settled != nil else { throw unanswered }
                case nil:
                    if !me.wait(seconds: database.answerTimeout.nanoseconds / 1_000_000_000 + 10), withdraw(me) { throw unanswered }
                }
            }
        }

        /// Takes `r` out of the queue; `false` when it is not there (its batch was sent, or it was told something).
        private func withdraw(_ r: Request) -> Bool {
            state.withLock { s in
                guard let i = s.queue.firstIndex(where: { $0 === r }) else { return false }
                s.queue.remove(at: i)
                return true
            }
        }

        /// Reads `p`, the connection of `slot`, until the batch in flight on it, which holds `r`, is answered; then
        /// each next batch on it that no sleeping caller could be made the reader of. Past the connection's deadline
        /// (or should it close with the batch unanswered), the connection is closed: the batch fails as it would on
        /// the pool.
        private func read(_ r: Request, slot: Int, on p: Pooled) {
            var r = r
            while true {
                let until = r
                if p.channel.drive(until: { until.settled != nil }, deadline: .now() + p.answerTimeout) != .done {
                    p.close()
                }
                guard let next = state.withLock({ s in defer { s.slots[slot].unread = nil }; return s.slots[slot].unread }) else { return }
                r = next
            }
        }

        /// The next batch from the queue: the oldest writes, one per key and none of a key in flight, at most
        /// ``maxBatch`` (their keys are in flight from now on).
        private func take(_ s: inout State) -> [Request] {
            var batch: [Request] = [], left: [Request] = []
            for r in s.queue {
                if batch.count < maxBatch, s.inFlight.insert(r.key).inserted { batch.append(r) } else { left.append(r) }
            }
            s.queue = left
            return batch
        }

        /// `op` written by itself on a connection of the pool.
        func alone(_ op: Op) throws -> Outcome {
            writesAlone.add(1, ordering: .relaxed)
            let statement = try build([op])
            let out = try database.withConnection { read(try $0.rows(statement), [op]) }
            precondition(out.count == 1, "a batch answers each of its writes")
            return out[0]
        }

        /// The connection of `slot` (held busy by the caller): `pooled` while open, else a new one (one attempt: the
        /// writes go to the pool, which retries, when it fails).
        private func open(_ pooled: Pooled?, slot: Int) throws -> Pooled {
            pooled?.channel.pump()  // closed by its server while idle: connect again rather than fail a batch
            if let pooled, !pooled.connection.isClosed { return pooled }
            let fresh = try database.connect()
            do {
                // Behind a pooler in transaction mode a session setting would land on whichever server connection
                // the statement reached, and stay there for another client: none is made (a batch then waits for a
                // row lock as long as a write alone would).
                if database.uri.poolMode == .session {
                    try Connection(pooled: fresh, logger: database.logger).execute(PostgresDatabase.laneSettings)
                }
            } catch {
                fresh.close()
                throw error
            }
            state.withLock { $0.slots[slot].pooled = fresh }
            return fresh
        }

        /// Sends `batch` on `p`, the connection of `slot` (in its loop); ``finish(_:_:sql:slot:on:)`` runs when
        /// the answer is read.
        private func send(_ batch: [Request], slot: Int, on p: Pooled) {
            batchesSent.add(1, ordering: .relaxed)
            writesSent.add(batch.count, ordering: .relaxed)
            let connection = p.connection
            let statement: Connection.Statement
            do {
                guard !connection.isClosed else { throw Closed() }
                statement = try build(batch.map(\.op))
            } catch {
                return finish(batch, .failure(error), sql: nil, slot: slot, on: p)
            }
            p.execute(statement, logger: database.logger).whenComplete { result in
                self.finish(batch, result, sql: statement.sql, slot: slot, on: p)
            }
        }

        /// Answers `batch`'s callers and sends the next batch, if writes wait (in `p`'s loop): its first caller reads
        /// the answer.
        private func finish(_ batch: [Request], _ result: Result<[[SQLValue]], any Error>, sql: String?, slot: Int, on p: Pooled) {
            var dropped = false
            switch result {
            case .success(let rows):
                let outcomes = read(rows, batch.map(\.op))
                precondition(outcomes.count == batch.count, "a batch answers each of its writes")
                for (r, o) in zip(batch, outcomes) { r.tell(.done(.success(o))) }
            case .failure(let error) where error is Closed:  // never sent
                for r in batch { r.tell(.alone) }
            case .failure(let error):
                let e = error as? PostgresError ?? PostgresError(error, sql: sql)
                for r in batch { r.tell(e.sqlState != nil ? .alone : .done(.failure(e))) }
                // On a server that takes no writes (a failover demoted it), the next connection looks for the one that
                // does; one whose prepared statements were lost (a pooler in transaction mode) prepares them afresh. A
                // failure that is not the server's answer (the connection lost or closing) sends the writes waiting
                // to the pool, rather than into a connection PostgresNIO is closing.
                if e.isReadOnly || e.isLostStatement || e.sqlState == nil {
                    dropped = true
                    p.close()
                }
            }
            let open = !dropped && !p.connection.isClosed
            let next = state.withLock { s -> [Request] in
                s.inFlight.subtract(batch.map(\.key))
                guard open else {  // the waiting writes go to the pool; the next write on this slot connects again
                    defer { s.queue = []; s.slots[slot] = (nil, false, nil) }
                    return s.queue
                }
                let batch = take(&s)
                s.slots[slot].busy = !batch.isEmpty
                return batch
            }
            if !open {
                for r in next { r.tell(.alone) }
            } else if !next.isEmpty {
                send(next, slot: slot, on: p)
                if !next.contains(where: { $0.lead(p, slot: slot) }) {
                    state.withLock { $0.slots[slot].unread = next[0] }  // the thread reading now reads it too
                }
            }
        }
    }

    /// The longest a lane's batch waits for any one row lock before it is refused and its writes go to the pool one
    /// by one (milliseconds).
    static let laneLockTimeout = 50
    /// The settings of the lane's connections: its lock timeout; one plan per statement, made once (planning the
    /// batches' arrays costs about as much as running them); and no sequential scans — every statement of the lane
    /// reaches its rows by key, and a plan made while the tables were small (a sequential scan, cheapest then) would
    /// otherwise stay with the connection until the table's next ANALYZE, scanning every run for each batch.
    static let laneSettings = "SET lock_timeout = '\(laneLockTimeout)ms'; SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off"
    /// How long a lane that could not connect sends its writes straight to the pool before trying again.
    static let laneRetryNanos: UInt64 = 1_000_000_000
}

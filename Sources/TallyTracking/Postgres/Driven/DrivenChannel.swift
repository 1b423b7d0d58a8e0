import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A NIO channel over a blocking socket, on a ``DrivenLoop`` of its own: what its handlers write is sent by the
/// thread that flushes it, and bytes are read only by a thread that waits for them (``drive(until:deadline:)``). It is
/// active from the start (the socket is connected when it is made) until closed. Reads follow NIO's `autoRead`: one
/// read is delivered per `read()` that reaches the channel, and another is asked for after each, through the pipeline,
/// so a handler holding reads back (PostgresNIO's row streams do, until their consumer asks for more) is obeyed.
/// PostgresNIO runs on it as on any channel (`PostgresConnection.Configuration(establishedChannel:)`), and NIOSSL's
/// handler too.
///
/// Unchecked `Sendable`: its pipeline is set once, in `init`; the rest of its state is atomic or under a lock, and the
/// pipeline itself is only used by the thread in the loop, as NIO requires of any channel.
final class DrivenChannel: Channel, ChannelCore, @unchecked Sendable {
    let loop: DrivenLoop
    let fd: Int32
    let allocator = ByteBufferAllocator()
    let remoteAddress: SocketAddress?
    private var _pipeline: ChannelPipeline!
    var pipeline: ChannelPipeline { _pipeline }
    private let closePromise: EventLoopPromise<Void>
    private let active = Atomic<Bool>(true)
    /// A `read()` reached the channel and no bytes were delivered since.
    private let readPending = Atomic<Bool>(false)
    /// A close was asked for (``requestClose()``): the drive in progress finishes it before it returns.
    private let closeRequested = Atomic<Bool>(false)
    /// Bytes written and not flushed yet, with their promises.
    private let pending = Mutex<(buffers: [ByteBuffer], promises: [EventLoopPromise<Void>])>(([], []))

    /// A channel over `socket`, which it owns (closed with the channel).
    init(_ socket: DrivenSocket.Connected) {
        loop = DrivenLoop()
        fd = socket.fd
        remoteAddress = socket.address
        closePromise = loop.makePromise()
        _pipeline = ChannelPipeline(channel: self)
        loop.run {
            pipeline.fireChannelRegistered()
            pipeline.fireChannelActive()
            pipeline.read()  // autoRead
        }
    }

    var eventLoop: any EventLoop { loop }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var localAddress: SocketAddress? { nil }
    var parent: (any Channel)? { nil }
    var isWritable: Bool { true }
    var isActive: Bool { active.load(ordering: .relaxed) }
    var _channelCore: any ChannelCore { self }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        loop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        loop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    // MARK: ChannelCore (called by the pipeline, in the loop)

    func localAddress0() throws -> SocketAddress { throw ChannelError.operationUnsupported }

    func remoteAddress0() throws -> SocketAddress {
        guard let remoteAddress else { throw ChannelError.operationUnsupported }
        return remoteAddress
    }

    func register0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func read0() { readPending.store(true, ordering: .relaxed) }
    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: any Error) {}

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard isActive else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        pending.withLock { p in
            p.buffers.append(buffer)
            if let promise { p.promises.append(promise) }
        }
    }

    /// Sends what was written, whole, before returning; a failed send closes the channel.
    func flush0() {
        let (buffers, promises) = pending.withLock { p in defer { p = ([], []) }; return p }
        do {
            guard isActive else { throw ChannelError.ioOnClosedChannel }
            for b in buffers { try b.withUnsafeReadableBytes { try DrivenSocket.sendAll(fd, $0) } }
            for p in promises { p.succeed() }
        } catch {
            for p in promises { p.fail(error) }
            pipeline.fireErrorCaught(error)
            close0(error: error, mode: .all, promise: nil)
        }
    }

    func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard active.exchange(false, ordering: .relaxed) else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        Glibc.close(fd)
        let unsent = pending.withLock { p in defer { p = ([], []) }; return p.promises }
        for p in unsent { p.fail(error) }
        promise?.succeed()
        pipeline.fireChannelInactive()
        pipeline.fireChannelUnregistered()
        loop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }

    // MARK: Driving

    /// How a drive ended.
    enum Drive {
        /// `until` became true.
        case done
        /// The deadline passed first.
        case timedOut
        /// The channel closed first (PostgresNIO fails what it had in flight as it closes: a drive ends this way only
        /// for something it never sent).
        case closed
    }

    /// Enters the loop and stays in it until `done()` (checked after each step): runs its tasks and due timers, and
    /// waits for bytes, handing each read to the pipeline while a `read()` is pending (else it waits for a task or a
    /// timer to ask for one). The peer closing, or a failed read, closes the channel.
    func drive(until done: () -> Bool, deadline: NIODeadline) -> Drive {
        let outcome = step(until: done, deadline: deadline)
        if closeRequested.load(ordering: .relaxed) && isActive { shut() }
        return outcome
    }

    /// Marks the channel as closing: a close was sent through the pipeline from inside the loop (a handler's callback),
    /// where it cannot be driven to its end; the drive in progress does that before it returns.
    func requestClose() {
        closeRequested.store(true, ordering: .relaxed)
    }

    /// How long a close through the pipeline is driven before the socket is closed regardless: TLS sends its
    /// close_notify and waits for the peer's, which a peer that is gone never sends.
    static let closeGrace: TimeAmount = .milliseconds(200)

    /// Finishes a close started through the pipeline (reading until the handlers close the channel, at most `grace`),
    /// then closes the socket if it is still open. Not from inside a handler's callback.
    func shut(grace: TimeAmount = closeGrace) {
        closeRequested.store(true, ordering: .relaxed)
        if isActive { _ = step(until: { !isActive }, deadline: .now() + grace) }
        if isActive { loop.run { close0(error: ChannelError.alreadyClosed, mode: .all, promise: nil) } }
    }

    /// The body of ``drive(until:deadline:)``.
    private func step(until done: () -> Bool, deadline: NIODeadline) -> Drive {
        loop.enter()
        defer { loop.leave() }
        while true {
            loop.runPending()
            if done() { return .done }
            guard isActive else { return .closed }
            let now = NIODeadline.now()
            guard now < deadline else { return .timedOut }
            let wake = min(deadline, loop.nextDeadline ?? deadline)
            let millis = wake <= now ? 0 : Int32(clamping: ((wake - now).nanoseconds + 999_999) / 1_000_000)
            guard readPending.load(ordering: .relaxed) else {
                // Reads are held back: only a task can ask for one (none is due before a millisecond has passed).
                usleep(UInt32(min(millis, 1) * 1_000))
                continue
            }
            if DrivenSocket.readable(fd, millis: millis) { readOnce() }
        }
    }

    /// Reads what already waits, without waiting (while reads are asked for): an idle connection learns this way that
    /// its peer closed it, or what it sent unasked (PostgreSQL's notice that it is shutting the session down), before
    /// it is used again.
    func pump() {
        loop.run {
            loop.runPending()
            while isActive, readPending.load(ordering: .relaxed), DrivenSocket.readable(fd, millis: 0) {
                readOnce()
                loop.runPending()
            }
        }
    }

    /// One read handed to the pipeline (in the loop, with bytes or the end waiting): EOF or a failed read closes the
    /// channel.
    private func readOnce() {
        var input = allocator.buffer(capacity: 16 * 1024)
        do {
            readPending.store(false, ordering: .relaxed)
            if try DrivenSocket.read(fd, into: &input) == 0 {
                close0(error: ChannelError.eof, mode: .all, promise: nil)
                return
            }
            pipeline.fireChannelRead(input)
            pipeline.fireChannelReadComplete()
            if isActive { pipeline.read() }  // autoRead: the handlers may hold it back
        } catch {
            pipeline.fireErrorCaught(error)
            close0(error: error, mode: .all, promise: nil)
        }
    }
}

import Foundation
import NIOCore
import Synchronization
import Testing
@testable import TallyTracking

/// The caller-driven loop and channel under the PostgreSQL pool (`DrivenLoop`, `DrivenChannel`), over a real socket
/// pair: writes leave on flush from the writing thread, bytes are read only while a thread drives, reads held back by
/// a handler stay held, timers run when due, the peer closing closes the channel, and the loop lets one thread in at
/// a time.
@Suite struct DrivenChannelTests {
    /// A channel over one end of a socket pair, and the other end's descriptor.
    static func pair() throws -> (DrivenChannel, Int32) {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (DrivenChannel(DrivenSocket.Connected(fd: fds[0], address: nil)), fds[1])
    }

    /// Collects what it reads; holds reads back while `holding` (as PostgresNIO's row streams do).
    final class Collector: ChannelDuplexHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer
        var received = ""
        var holding = false
        var held = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
        }

        func read(context: ChannelHandlerContext) {
            if holding { held += 1 } else { context.read() }
        }
    }

    static func add(_ channel: DrivenChannel) throws -> Collector {
        try channel.loop.run {
            let c = Collector()
            try channel.pipeline.syncOperations.addHandler(c)
            return c
        }
    }

    /// Reads what waits on `fd` (blocking for the first byte).
    static func read(_ fd: Int32) -> String {
        var bytes = [UInt8](repeating: 0, count: 256)
        let n = Foundation.read(fd, &bytes, bytes.count)
        return String(decoding: bytes.prefix(max(n, 0)), as: UTF8.self)
    }

    static func write(_ fd: Int32, _ s: String) {
        _ = Array(s.utf8).withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
    }

    static var soon: NIODeadline { .now() + .seconds(10) }

    @Test func writesLeaveOnFlushAndReadsComeWhileDriven() throws {
        let (channel, peer) = try Self.pair()
        defer { close(peer); channel.loop.run { channel.close(promise: nil) } }
        let collector = try Self.add(channel)
        channel.loop.run { channel.write(ByteBuffer(string: "ping"), promise: nil) }
        var waiting = pollfd(fd: peer, events: Int16(POLLIN), revents: 0)
        #expect(poll(&waiting, 1, 100) == 0, "nothing is sent before the flush")
        channel.loop.run { channel.flush() }
        #expect(Self.read(peer) == "ping")
        Self.write(peer, "pong")
        #expect(channel.drive(until: { collector.received == "pong" }, deadline: Self.soon) == .done)
        #expect(channel.drive(until: { false }, deadline: .now() + .milliseconds(50)) == .timedOut)
    }

    @Test func aReadHeldBackByAHandlerStaysHeld() throws {
        let (channel, peer) = try Self.pair()
        defer { close(peer); channel.loop.run { channel.close(promise: nil) } }
        let collector = try Self.add(channel)
        Self.write(peer, "a")
        #expect(channel.drive(until: { collector.received == "a" }, deadline: Self.soon) == .done)
        channel.loop.run { collector.holding = true }
        Self.write(peer, "b")
        // the read asked for after "a" went through the handler before it held: "b" is read, then reads are held
        #expect(channel.drive(until: { collector.received == "ab" }, deadline: Self.soon) == .done)
        Self.write(peer, "c")
        #expect(channel.drive(until: { collector.received.count == 3 }, deadline: .now() + .milliseconds(100)) == .timedOut)
        #expect(collector.received == "ab" && collector.held == 1)
        channel.loop.run {
            collector.holding = false
            channel.read()
        }
        #expect(channel.drive(until: { collector.received == "abc" }, deadline: Self.soon) == .done)
    }

    @Test func thePeerClosingClosesTheChannel() throws {
        let (channel, peer) = try Self.pair()
        _ = try Self.add(channel)
        let closed = Mutex(false)
        channel.closeFuture.whenComplete { _ in closed.withLock { $0 = true } }
        close(peer)
        #expect(channel.drive(until: { false }, deadline: Self.soon) == .closed)
        #expect(!channel.isActive && closed.withLock { $0 })
        // writing to it fails, and so does closing it again
        let failed = Mutex(false)
        channel.loop.run {
            channel.writeAndFlush(ByteBuffer(string: "x")).whenFailure { _ in failed.withLock { $0 = true } }
        }
        #expect(failed.withLock { $0 })
    }

    @Test func timersRunWhenDueWhileDrivenAndCancelledOnesNever() throws {
        let (channel, peer) = try Self.pair()
        defer { close(peer); channel.loop.run { channel.close(promise: nil) } }
        let ran = Mutex<[String]>([])
        let started = NIODeadline.now()
        let cancelled = channel.loop.scheduleTask(in: .milliseconds(20)) { ran.withLock { $0.append("cancelled") } }
        _ = channel.loop.scheduleTask(in: .milliseconds(60)) { ran.withLock { $0.append("due") } }
        cancelled.cancel()
        #expect(channel.drive(until: { !ran.withLock { $0 }.isEmpty }, deadline: Self.soon) == .done)
        #expect(ran.withLock { $0 } == ["due"] && NIODeadline.now() - started >= .milliseconds(60))
        let failure = Mutex<(any Error)?>(nil)
        cancelled.futureResult.whenFailure { e in failure.withLock { $0 = e } }
        #expect(failure.withLock { $0 } as? EventLoopError == .cancelled)
    }

    @Test func aTaskQueuedWhileAnotherThreadIsInRunsOnThatThread() throws {
        let loop = DrivenLoop()
        #expect(!loop.inEventLoop)
        // no thread in: execute runs the task before it returns, on the caller
        let ranOn = Mutex<[UInt]>([])
        loop.execute { ranOn.withLock { $0.append(UInt(pthread_self())) } }
        #expect(ranOn.withLock { $0 } == [UInt(pthread_self())])
        // another thread in: the task waits for it, and runs there as it leaves
        let entered = DispatchSemaphore(value: 0), queued = DispatchSemaphore(value: 0), left = DispatchSemaphore(value: 0)
        let inside = Mutex<UInt>(0)
        Thread {
            loop.enter()
            inside.withLock { $0 = UInt(pthread_self()) }
            #expect(loop.inEventLoop)
            entered.signal()
            queued.wait()
            loop.leave()
            left.signal()
        }.start()
        entered.wait()
        #expect(!loop.inEventLoop)
        loop.execute { ranOn.withLock { $0.append(UInt(pthread_self())) } }
        #expect(ranOn.withLock { $0 }.count == 1)
        queued.signal()
        left.wait()
        #expect(ranOn.withLock { $0 }.last == inside.withLock { $0 })
    }

    /// A counter no lock guards, kept only by the loop's one-thread-at-a-time rule.
    final class Unguarded: @unchecked Sendable {
        var count = 0
    }

    @Test func oneThreadAtATimeIsInTheLoop() {
        let loop = DrivenLoop(), counter = Unguarded(), group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread {
                for _ in 0..<20_000 {
                    loop.run {
                        loop.run { counter.count += 1 }  // entering again while in is allowed
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(counter.count == 80_000 && !loop.inEventLoop)
    }
}

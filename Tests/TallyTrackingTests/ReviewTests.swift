import Dispatch
import Synchronization
import Testing
@testable import TallyTracking

/// MLflow 3's human review on both backends: label schemas (each input kind, the default question, edits within a
/// kind, MLflow's limits and messages) and review queues (user and custom, reviewers, questions, items and their
/// status, deleted traces forgotten); the permissions of MLflow's auth app; two servers at once on one database.
@Suite struct ReviewTests {
    static let pass = JSONValue.object([("pass_fail", .object([("positive_label", .string("Yes")), ("negative_label", .string("No"))]))])
    static let text = JSONValue.object([("text", .object([]))])

    static func numeric(_ lo: String?, _ hi: String?) -> JSONValue {
        .object([("numeric", .object([lo.map { ("min_value", JSONValue.number($0)) }, hi.map { ("max_value", JSONValue.number($0)) }].compactMap { $0 }))])
    }

    static func categorical(_ options: [String], multi: Bool = false) -> JSONValue {
        .object([("categorical", .object([("options", .array(options.map(JSONValue.string))), ("multi_select", .bool(multi))]))])
    }

    @Test(arguments: Backend.all) func labelSchemas(_ backend: Backend) throws {
        var now: Int64 = 1_700_000_000_000
        let clock = Mutex(now)
        let f = try Fixture("ls", clock: { clock.withLock { $0 += 1; return $0 } }, backend: backend)
        let s = f.service
        let e = try s.createExperiment(name: "review")
        let yes = try s.createLabelSchema(experimentID: e, name: "Correct?", type: "FEEDBACK", input: Self.pass, instruction: "é", enableComment: true)
        #expect(yes.id.hasPrefix("ls-") && yes.id.count == 35 && yes.input == .passFail(positive: "Yes", negative: "No") && yes.enableComment)
        let n = try s.createLabelSchema(experimentID: "0" + e, name: "n", type: "EXPECTATION", input: Self.numeric("NaN", "-Infinity"), instruction: nil,
                                        enableComment: nil)
        #expect(n.experimentID == e && n.type == .expectation)
        let read = try s.labelSchema(id: n.id)
        guard case .numeric(let lo?, let hi?) = read.input else { Issue.record("\(read.input)"); return }
        #expect(lo.isNaN && hi == -.infinity)  // stored as Python writes them, read back
        _ = try s.createLabelSchema(experimentID: e, name: "c", type: "FEEDBACK", input: Self.categorical(["a", "b"], multi: true), instruction: nil, enableComment: nil)
        #expect(try s.labelSchema(experimentID: e, name: "c").input == .categorical(options: ["a", "b"], multiSelect: true))

        // The default question: made by the first listing, once; newest first after it.
        let (all, token) = try s.labelSchemas(experimentID: e, maxResults: nil, pageToken: nil)
        #expect(all.map(\.name) == ["Feedback", "c", "n", "Correct?"] && token == nil)
        #expect(all[0].isDefault && all[0].input == .text(maxLength: nil) && all[0].type == .feedback)
        #expect(try s.labelSchemas(experimentID: e, maxResults: nil, pageToken: nil).0.filter(\.isDefault).count == 1)
        let (page, next) = try s.labelSchemas(experimentID: e, maxResults: 3, pageToken: nil)
        #expect(page.count == 3 && next != nil)
        #expect(try s.labelSchemas(experimentID: e, maxResults: 3, pageToken: next).0.map(\.name) == ["Correct?"])
        expectError(.invalidParameterValue, "max_results must be between 1 and 50000.") { _ = try s.labelSchemas(experimentID: e, maxResults: 0, pageToken: nil) }

        // MLflow's rules and messages.
        func refused(_ message: String, name: String = "x", type: String? = "FEEDBACK", input: JSONValue? = Self.text, instruction: String? = nil) {
            expectError(.invalidParameterValue, message) {
                _ = try s.createLabelSchema(experimentID: e, name: name, type: type, input: input, instruction: instruction, enableComment: nil)
            }
        }
        refused("Label schema `type` must be one of FEEDBACK or EXPECTATION; got proto enum value 0.", type: nil)
        refused("got an empty oneof.", input: .object([]))
        refused("got `text` and `numeric`.", input: .object([("text", .object([])), ("numeric", .object([]))]))
        refused("`  FeedBack ` is reserved for the experiment's default question", name: "  FeedBack ")
        refused("Label schema `name` must be at most 250 characters; got 251.", name: String(repeating: "é", count: 251))
        refused("Label schema `instruction` must be at most 1000 characters; got 1001.", instruction: String(repeating: "i", count: 1001))
        refused("`InputCategorical.options` must be deduplicated; 'a' appears twice.", input: Self.categorical(["a", "a"]))
        refused("`InputCategorical.options` must have at most 10 entries; got 11.", input: Self.categorical((0...10).map(String.init)))
        refused("`InputNumeric.min_value` must be strictly less than `max_value`; got min=2.0, max=2.0.", input: Self.numeric("2", "2"))
        refused("`InputPassFail.positive_label` and `negative_label` must be distinct; got \"a'b\" for both.",
                input: .object([("pass_fail", .object([("positive_label", .string("a'b")), ("negative_label", .string("a'b"))]))]))
        refused("`InputText.max_length` must be at least 1; got 0.", input: .object([("text", .object([("max_length", .number("0"))]))]))
        refused("Invalid value \"x\" for parameter 'max_length'", input: .object([("text", .object([("max_length", .string("x"))]))]))
        expectError(.resourceAlreadyExists, "Label schema with name 'c' already exists for experiment '\(e)'.") {
            _ = try s.createLabelSchema(experimentID: e, name: "c", type: "FEEDBACK", input: Self.text, instruction: nil, enableComment: nil)
        }
        expectError(.resourceDoesNotExist, "No Experiment with id=999 exists") {
            _ = try s.createLabelSchema(experimentID: "999", name: "x", type: "FEEDBACK", input: Self.text, instruction: nil, enableComment: nil)
        }

        // Edits: within the kind; a categorical's multi_select, the type and the default question stay.
        now = clock.withLock { $0 }
        let renamed = try s.updateLabelSchema(id: yes.id, name: "Right?", instruction: nil, enableComment: false, input: nil)
        #expect(renamed.name == "Right?" && !renamed.enableComment && renamed.instruction == "é" && renamed.lastUpdateTime > now && renamed.creationTime == yes.creationTime)
        expectError(.resourceAlreadyExists, "Label schema with name 'c' already exists for experiment '\(e)'.") {
            _ = try s.updateLabelSchema(id: yes.id, name: "c", instruction: nil, enableComment: nil, input: nil)
        }
        expectError(.invalidParameterValue, "(existing: InputPassFail, got: InputText)") {
            _ = try s.updateLabelSchema(id: yes.id, name: nil, instruction: nil, enableComment: nil, input: Self.text)
        }
        let c = try s.labelSchema(experimentID: e, name: "c")
        expectError(.invalidParameterValue, "`InputCategorical.multi_select` cannot be changed after creation.") {
            _ = try s.updateLabelSchema(id: c.id, name: nil, instruction: nil, enableComment: nil, input: Self.categorical(["a"]))
        }
        #expect(try s.updateLabelSchema(id: c.id, name: nil, instruction: nil, enableComment: nil, input: Self.categorical(["z"], multi: true)).input
                == .categorical(options: ["z"], multiSelect: true))
        expectError(.invalidParameterValue, "The experiment's default question cannot be edited.") {
            _ = try s.updateLabelSchema(id: all[0].id, name: "z", instruction: nil, enableComment: nil, input: nil)
        }
        expectError(.invalidParameterValue, "The experiment's default question cannot be deleted.") { try s.deleteLabelSchema(id: all[0].id) }
        expectError(.resourceDoesNotExist, "Label schema with id 'ls-nope' not found.") {
            _ = try s.updateLabelSchema(id: "ls-nope", name: "z", instruction: nil, enableComment: nil, input: nil)
        }
        try s.deleteLabelSchema(id: c.id)
        try s.deleteLabelSchema(id: c.id)  // nothing there: no error (MLflow's)
        expectError(.resourceDoesNotExist, "Label schema with id '\(c.id)' not found.") { _ = try s.labelSchema(id: c.id) }
        // The name is free again; a deleted experiment has none to list.
        _ = try s.createLabelSchema(experimentID: e, name: "c", type: "FEEDBACK", input: Self.text, instruction: nil, enableComment: nil)
        try s.deleteExperiment(id: e)
        expectError(.resourceDoesNotExist, "No Experiment with id=\(e) exists") { _ = try s.labelSchemas(experimentID: e, maxResults: nil, pageToken: nil) }
    }

    @Test(arguments: Backend.all) func reviewQueues(_ backend: Backend) throws {
        let clock = Mutex<Int64>(1_700_000_000_000)
        let f = try Fixture("rq", clock: { clock.withLock { $0 += 1; return $0 } }, backend: backend)
        let s = f.service
        let e = try s.createExperiment(name: "review"), other = try s.createExperiment(name: "other")
        for i in 1...4 { _ = try s.startTrace(TraceTests.trace(i, experiment: e)) }
        _ = try s.startTrace(TraceTests.trace(9, experiment: other))
        let q1 = try s.createLabelSchema(experimentID: e, name: "q1", type: "FEEDBACK", input: Self.text, instruction: nil, enableComment: nil)
        let elsewhere = try s.createLabelSchema(experimentID: other, name: "q1", type: "FEEDBACK", input: Self.text, instruction: nil, enableComment: nil)

        let team = try s.createReviewQueue(experimentID: e, name: " Team Q ", queueType: "CUSTOM", users: ["Bob ", " alice", "bob"], schemaIDs: [q1.id])
        #expect(team.name == "Team Q" && team.users == ["alice", "bob"] && team.schemaIDs == [q1.id] && team.createdBy == nil && team.id.hasPrefix("rq-"))
        expectError(.resourceAlreadyExists, "Review queue with name 'team q' already exists (names are case-insensitive).") {
            _ = try s.createReviewQueue(experimentID: e, name: "team q", queueType: "CUSTOM", users: [], schemaIDs: [])
        }
        expectError(.invalidParameterValue, "Label schema id(s) ['\(elsewhere.id)'] not found for experiment '\(e)'.") {
            _ = try s.createReviewQueue(experimentID: e, name: "x", queueType: "CUSTOM", users: [], schemaIDs: [elsewhere.id])
        }
        expectError(.invalidParameterValue, "`Default` is a reserved queue name") {
            _ = try s.createReviewQueue(experimentID: e, name: " Default", queueType: "CUSTOM", users: [], schemaIDs: [])
        }
        expectError(.invalidParameterValue, "A review queue can have at most 10 assigned users; got 11.") {
            _ = try s.createReviewQueue(experimentID: e, name: "x", queueType: "CUSTOM", users: (0...10).map(String.init), schemaIDs: [])
        }
        expectError(.invalidParameterValue, "got name='uq' and users=['a'].") {
            _ = try s.createReviewQueue(experimentID: e, name: "UQ", queueType: "USER", users: ["A"], schemaIDs: [])
        }
        expectError(.invalidParameterValue, "`queue_type` must be one of USER or CUSTOM") {
            _ = try s.createReviewQueue(experimentID: e, name: "x", queueType: nil, users: [], schemaIDs: [])
        }
        let carol = try s.userReviewQueue(experimentID: e, user: " Carol")
        #expect(carol.name == "carol" && carol.users == ["carol"] && carol.createdBy == "carol" && carol.type == .user)
        #expect(try s.userReviewQueue(experimentID: e, user: "CAROL") == carol)
        expectError(.resourceAlreadyExists, "A non-user queue named 'team q' already exists") { _ = try s.userReviewQueue(experimentID: e, user: "Team Q") }
        #expect(try s.reviewQueue(experimentID: e, name: "TEAM Q") == team)
        #expect(try s.reviewQueues(experimentID: e, user: nil, itemID: nil, maxResults: nil, pageToken: nil).0.map(\.name) == ["carol", "Team Q"])
        #expect(try s.reviewQueues(experimentID: e, user: " ALICE", itemID: nil, maxResults: nil, pageToken: nil).0 == [team])
        let (one, token) = try s.reviewQueues(experimentID: e, user: nil, itemID: nil, maxResults: 1, pageToken: nil)
        #expect(one == [carol] && token != nil)
        #expect(try s.reviewQueues(experimentID: e, user: nil, itemID: nil, maxResults: 1, pageToken: token).0 == [team])

        // Items: traces of the queue's experiment only; a second add keeps the first status.
        let ids = (1...4).map(TraceTests.id)
        let added = try s.addReviewItems(queueID: team.id, itemIDs: [ids[0], " " + ids[1], ids[0]])
        #expect(added.map(\.itemID) == [ids[0], ids[1]] && added.allSatisfy { $0.status == .pending && $0.itemType == "trace" })
        expectError(.resourceDoesNotExist, "Cannot attach trace(s) ['\(TraceTests.id(9))', 'tr-nope'] to review queue '\(team.id)': they do not exist in experiment '\(e)'.") {
            _ = try s.addReviewItems(queueID: team.id, itemIDs: [TraceTests.id(9), ids[2], "tr-nope"])
        }
        expectError(.invalidParameterValue, "`item_ids` must be a non-empty list; got [].") { _ = try s.addReviewItems(queueID: team.id, itemIDs: []) }
        let done = try s.setReviewItemStatus(queueID: team.id, itemID: ids[0], status: "COMPLETE", completedBy: " Bob ")
        #expect(done.status == .complete && done.completedBy == "bob" && done.completedTime == done.lastUpdateTime)
        #expect(try s.setReviewItemStatus(queueID: team.id, itemID: ids[0], status: "COMPLETE", completedBy: "carol") == done)  // first completer stays
        _ = try s.addReviewItems(queueID: team.id, itemIDs: [ids[0], ids[2]])
        #expect(try s.reviewItems(queueID: team.id, status: "COMPLETE", maxResults: nil, pageToken: nil).0 == [done])
        #expect(try s.reviewItems(queueID: team.id, status: nil, maxResults: nil, pageToken: nil).0.map(\.itemID) == [ids[2], ids[0], ids[1]])
        expectError(.invalidParameterValue, "`completed_by` is required when setting status to `declined`.") {
            _ = try s.setReviewItemStatus(queueID: team.id, itemID: ids[1], status: "DECLINED", completedBy: "  ")
        }
        expectError(.invalidParameterValue, "`completed_by` must not be set when reopening an item to `pending`.") {
            _ = try s.setReviewItemStatus(queueID: team.id, itemID: ids[0], status: "PENDING", completedBy: "x")
        }
        expectError(.resourceDoesNotExist, "Item '\(ids[3])' is not attached to review queue '\(team.id)'.") {
            _ = try s.setReviewItemStatus(queueID: team.id, itemID: ids[3], status: "COMPLETE", completedBy: "bob")
        }
        let reopened = try s.setReviewItemStatus(queueID: team.id, itemID: ids[0], status: "PENDING", completedBy: nil)
        #expect(reopened.status == .pending && reopened.completedBy == nil && reopened.completedTime == nil)
        #expect(try s.reviewQueues(experimentID: e, user: nil, itemID: ids[0], maxResults: nil, pageToken: nil).0.map(\.id) == [team.id])

        // Changes: questions only while empty; a user queue never; a rename onto another queue's name refused.
        expectError(.invalidParameterValue, "questions are locked once items are assigned to it") {
            _ = try s.updateReviewQueue(id: team.id, users: nil, schemaIDs: [], name: nil, newOwner: nil)
        }
        expectError(.invalidParameterValue, "A user queue's name, assigned user, schemas, and owner are fixed") {
            _ = try s.updateReviewQueue(id: carol.id, users: nil, schemaIDs: nil, name: nil, newOwner: nil)
        }
        expectError(.resourceAlreadyExists, "Review queue with name 'CAROL' already exists") {
            _ = try s.updateReviewQueue(id: team.id, users: nil, schemaIDs: nil, name: "CAROL", newOwner: nil)
        }
        let changed = try s.updateReviewQueue(id: team.id, users: ["Dan", "dan"], schemaIDs: nil, name: "team q", newOwner: " Eve ")
        #expect(changed.name == "team q" && changed.users == ["dan"] && changed.createdBy == "Eve" && changed.schemaIDs == [q1.id])
        #expect(try s.reviewQueue(id: team.id) == changed)

        // A deleted trace leaves every queue; a removed one leaves this one.
        _ = try s.deleteTraces(experimentID: e, maxTimestamp: nil, maxTraces: nil, ids: [ids[0]])
        try s.removeReviewItems(queueID: team.id, itemIDs: [ids[2], "tr-never"])
        #expect(try s.reviewItems(queueID: team.id, status: nil, maxResults: nil, pageToken: nil).0.map(\.itemID) == [ids[1]])
        try s.removeReviewItems(queueID: team.id, itemIDs: [ids[1]])
        #expect(try s.updateReviewQueue(id: team.id, users: nil, schemaIDs: [], name: nil, newOwner: nil).schemaIDs == [])
        try s.deleteReviewQueue(id: team.id)
        try s.deleteReviewQueue(id: team.id)
        expectError(.resourceDoesNotExist, "Review queue with id '\(team.id)' not found.") { _ = try s.reviewItems(queueID: team.id, status: nil, maxResults: nil, pageToken: nil) }
        // Its name is free again.
        #expect(try s.createReviewQueue(experimentID: e, name: "Team Q", queueType: "CUSTOM", users: [], schemaIDs: []).name == "Team Q")
    }

    @Test func queueGrantsFollowMLflowsRules() throws {
        let e = "4"
        func g(_ d: Permission, _ list: [(Resource, Permission)]) -> Grants { Grants(defaultPermission: d, grants: list.map { Grant(resource: $0.0, permission: $0.1) }) }
        func user(_ name: String) -> Caller { Caller(userID: 7, username: name, isAdmin: false) }
        let q = ReviewQueue(id: "rq-1", experimentID: e, name: "q", type: .custom, createdBy: "Bob", creationTime: 0, lastUpdateTime: 0,
                            users: ["alice"], schemaIDs: [])
        let reader = g(.noPermissions, [(.experiment(e), .read)]), editor = g(.noPermissions, [(.experiment(e), .edit)])
        let manager = g(.noPermissions, [(.experiment(e), .manage)])
        // Viewing: a reviewer with READ, the owner with EDIT, a manager.
        #expect(throws: Never.self) { try reader.requireQueue(.view, q, caller: user(" ALICE")) }
        #expect(throws: TrackingError.self) { try reader.requireQueue(.view, q, caller: user("bob")) }
        #expect(throws: Never.self) { try editor.requireQueue(.view, q, caller: user("bob")) }
        #expect(throws: TrackingError.self) { try editor.requireQueue(.view, q, caller: user("carol")) }
        #expect(throws: Never.self) { try manager.requireQueue(.view, q, caller: user("carol")) }
        // Reviewing: a reviewer with EDIT, even a manager must be one.
        #expect(throws: TrackingError.self) { try reader.requireQueue(.review, q, caller: user("alice")) }
        #expect(throws: Never.self) { try editor.requireQueue(.review, q, caller: user("alice")) }
        #expect(throws: TrackingError.self) { try manager.requireQueue(.review, q, caller: user("carol")) }
        // Owners change and prune their own custom queue; only a manager reassigns or prunes a user queue.
        #expect(throws: Never.self) { try editor.requireQueue(.change, q, caller: user("bob")) }
        #expect(throws: TrackingError.self) { try editor.requireQueue(.reassign, q, caller: user("bob")) }
        #expect(throws: Never.self) { try editor.requireQueue(.prune, q, caller: user("bob")) }
        var mine = q
        mine.type = .user
        #expect(throws: TrackingError.self) { try editor.requireQueue(.prune, mine, caller: user("bob")) }
        #expect(throws: Never.self) { try manager.requireQueue(.prune, mine, caller: user("x")) }
        // The review_queue `*` grant replaces the experiment's level, but never without READ on the experiment.
        let denied = g(.noPermissions, [(.experiment(e), .manage), (Resource(.reviewQueue, "*"), .deny)])
        #expect(throws: TrackingError.self) { try denied.requireQueue(.view, q, caller: user("alice")) }
        #expect(throws: TrackingError.self) { try denied.requireQueueCreate(experimentID: e) }
        let raised = g(.noPermissions, [(.experiment(e), .read), (Resource(.reviewQueue, "*"), .manage)])
        #expect(throws: Never.self) { try raised.requireQueue(.prune, q, caller: user("x")) }
        #expect(g(.noPermissions, [(Resource(.reviewQueue, "*"), .manage)]).reviewQueueLevel(experimentID: e) == .noPermissions)
        // Listings: EDIT sees every queue, READ its own.
        #expect(editor.canList(q, caller: user("x")) && reader.canList(q, caller: user("alice")) && !reader.canList(q, caller: user("bob")))
    }

    @Test func twoServersOnOneDatabase() throws {
        guard Backend.all.contains(.postgres) else { return }
        let f = try Fixture("rqc", backend: .postgres)
        let servers = [f.service, try f.secondServer()]
        let e = try servers[0].createExperiment(name: "shared")
        // The same user's queue asked for through both at once: one queue.
        let queues = Mutex<Set<String>>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                let q = try servers[i % 2].userReviewQueue(experimentID: e, user: "Pat")
                queues.withLock { _ = $0.insert(q.id) }
            } catch { failures.withLock { $0.append("\(error)") } }
        }
        #expect(failures.withLock { $0 } == [] && queues.withLock { $0.count } == 1)
        // The same question made through both at once: one wins, the others are MLflow's RESOURCE_ALREADY_EXISTS.
        let made = Mutex(0), taken = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                _ = try servers[i % 2].createLabelSchema(experimentID: e, name: "same", type: "FEEDBACK", input: Self.text, instruction: nil, enableComment: nil)
                made.withLock { $0 += 1 }
            } catch let error as TrackingError where error.code == .resourceAlreadyExists {
                taken.withLock { $0 += 1 }
            } catch { failures.withLock { $0.append("\(error)") } }
        }
        #expect(made.withLock { $0 } == 1 && taken.withLock { $0 } == 7 && failures.withLock { $0 } == [])
        // An item's status set through one is read through the other at once.
        _ = try servers[0].startTrace(TraceTests.trace(5, experiment: e))
        let q = try servers[1].createReviewQueue(experimentID: e, name: "team", queueType: "CUSTOM", users: ["pat"], schemaIDs: [])
        _ = try servers[0].addReviewItems(queueID: q.id, itemIDs: [TraceTests.id(5)])
        _ = try servers[1].setReviewItemStatus(queueID: q.id, itemID: TraceTests.id(5), status: "COMPLETE", completedBy: "pat")
        #expect(try servers[0].reviewItems(queueID: q.id, status: "COMPLETE", maxResults: nil, pageToken: nil).0.map(\.completedBy) == ["pat"])
    }
}

/// Python's rules the review messages and names depend on.
@Suite struct PythonRulesTests {
    @Test func stripAndRepr() {
        #expect(TrackingService.normalizedUser("\u{1F} Alice\u{3000}\n") == "alice")  // Python's isspace: U+001C–U+001F too
        #expect(PythonNumber.strip(" \u{1C}\u{1D} ") == "")
        #expect(PythonRepr.string("a b\u{3000}c") == "'a b\\u3000c'")  // a space separator other than ' ' is escaped
        #expect(PythonRepr.string("it's") == "\"it's\"" && PythonRepr.string("\"'") == "'\"\\''")
        #expect(PythonRepr.string("é\u{7}\u{AD}\u{2028}") == "'é\\x07\\xad\\u2028'")
        #expect(PythonRepr.strings(["a", "b"]) == "['a', 'b']" && PythonRepr.strings([]) == "[]")
    }

    @Test func longListsOfReviewersAndQuestionsAreDeduplicated() throws {
        #expect(try TrackingService.normalizedUsers(Array(repeating: " Bob", count: 50_000)) == ["bob"])
        #expect(try TrackingService.normalizedSchemaIDs((0..<50_000).map { "ls-\($0 % 3)" }) == ["ls-0", "ls-1", "ls-2"])
        expectError(.invalidParameterValue, "at most 10 assigned users; got 11.") { _ = try TrackingService.normalizedUsers((0...10).map { "u\($0)" }) }
        #expect(try TrackingService.labelInput(.object([("text", .object([("max_length", .number("3000000000"))]))])) == .text(maxLength: 3_000_000_000))
    }
}

// Models `distemu replay FILE` under the sim engine: a perf trace's threads become tasks on emulated
// CPUs (spread over the nodes, or as --cpu-map says), its mappings and faults become their ops, and the
// run's counters come back with a report. Two streaming passes over the file: the first finds the TIDs
// (to create the tasks and check the CPU count) and the pages that fault twice in one mapping epoch (whose
// first fault was a read: perf does not record the kind), the second plans and feeds ops while the run goes.
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Replay;

/// <summary>What a replay produced: the harness (machine, tasks, violations), the address spaces and the report.</summary>
public sealed class ReplayResult
{
    public required SimHarness Harness { get; init; }

    public EmuMachine Machine => Harness.Machine;

    /// <summary>The address spaces: one per copy, or one with <see cref="ReplayOptions.SharedMm"/>.</summary>
    public required IReadOnlyList<MmStruct> Mms { get; init; }

    /// <summary>Per task (copy k's TID i is task k × TIDs + i).</summary>
    public required IReadOnlyList<TaskCounters> PerTask { get; init; }

    /// <summary>TIDs in order of first appearance in the trace.</summary>
    public required IReadOnlyList<int> Tids { get; init; }

    public required ReplayReport Report { get; init; }
}

/// <summary>The run's own figures in replay.json (the rest comes from the trace and the planner).</summary>
public sealed record ReplayRunFigures
{
    public long EmulatedFaults { get; init; }

    public long Sigsegv { get; init; }

    public long Sigbus { get; init; }

    public long EmulatedNs { get; init; }

    public long OrderWaits { get; init; }

    public long ReadAheadWaits { get; init; }

    public long MaxBufferedOps { get; init; }

    public ulong EventHash { get; init; }

    /// <summary>VMAs in the (first) mm when the replay ended.</summary>
    public int Vmas { get; init; }

    /// <summary>Engine-specific notes, appended to the standard ones.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>
/// First-pass facts about a trace: its TIDs in order of first appearance, when each first appears and, when the pass
/// planned the faults, which pages fault more than once per mapping epoch (the fault kinds the planning pass infers).
/// </summary>
/// <param name="ProcessOf">With processes: each TID's process (0 = the first one; a TID keeps its process for life).</param>
/// <param name="Processes">How many processes the trace's task events made (1 without processes).</param>
public sealed record TraceThreads(IReadOnlyList<int> Tids, IReadOnlyDictionary<int, long> FirstTimeNs, long StartNs, RepeatedPages? Repeats = null,
    IReadOnlyDictionary<int, int>? ProcessOf = null, int Processes = 1)
{
    /// <summary>The process of <paramref name="tid"/> (0 when the trace made no process of its own for it).</summary>
    public int ProcessOfTid(int tid) => ProcessOf is not null && ProcessOf.TryGetValue(tid, out int p) ? p : 0;
}

public static class TraceReplay
{
    public static readonly IReadOnlyList<string> StandardNotes =
    [
        ReplayReport.FaultKindNote,
        "each page-fault line is one access by its thread; the emulated machine decides whether that access faults",
        "an MMAP2 line over an existing mapping replaces the overlap (perf reports mprotect as MMAP2 too, so a replayed mprotect discards the pages and they fault again)",
        "faults outside every mapping are inferred as heap growth (above the executable's data segment) or stack growth (below [stack], within 8 MiB), else skipped as unmapped",
        "faults in PROT_NONE mappings (guard pages) are skipped as prot-none",
        "file mappings use page-cache files that are not disk-backed (no major faults)",
        "memory: one streaming reader feeds per-task op queues; read-ahead for lagging tasks is capped at max_buffered_ops (a task that would read further sleeps in emulated time until the queues drain to half)",
        "mmap ops are ordered with every other thread's ops in trace order; accesses between two mmaps run concurrently",
    ];

    /// <summary>
    /// Pass 1: the trace's TIDs (first-appearance order) and first timestamps. Strict mode throws on bad input here.
    /// With <paramref name="pageSize"/> &gt; 0 it also plans every fault as the second pass will, to find the pages that
    /// fault more than once per mapping epoch (<see cref="TraceThreads.Repeats"/>, for <see cref="TracePlanner.Kinds"/>).
    /// </summary>
    /// <param name="processes">Task events make processes (<see cref="TracePlanner.Processes"/>): find each TID's.</param>
    public static TraceThreads ScanThreads(string path, PerfParseMode mode = PerfParseMode.Strict, int pageSize = 0, int repeatCapacity = RepeatedPages.DefaultCapacity, bool processes = false)
    {
        var tids = new List<int>();
        var first = new Dictionary<int, long>();
        var processOf = new Dictionary<int, int>();
        int nProcesses = 1;
        long start = long.MaxValue;
        var repeats = pageSize > 0 ? new RepeatedPages(repeatCapacity) : null;
        var planner = repeats is null ? null : new TracePlanner(pageSize, asFastAsPossible: true) { Survey = repeats, Processes = processes };
        var scratch = new List<PlannedOp>();
        using var reader = PerfScriptReader.Open(path, mode);
        while (reader.TryRead(out var record))
        {
            if (planner is not null)
            {
                scratch.Clear();
                planner.Plan(record, scratch);
            }

            if (record.IsTask)
            {
                var e = record.Task;
                if (!processes || e.Kind == PerfTaskEventKind.Exit)
                {
                    continue; // an exit plans no op: its TID needs no task
                }

                if (e.Kind == PerfTaskEventKind.Fork)
                {
                    int parent = processOf.GetValueOrDefault(e.Tid);
                    processOf[e.ChildTid] = e.IsProcessFork ? nProcesses++ : parent;
                    if (!e.IsProcessFork)
                    {
                        continue; // a new thread: its parent runs no op for it
                    }
                }
            }

            start = Math.Min(start, record.TimeNs);
            if (first.TryAdd(record.Tid, record.TimeNs))
            {
                tids.Add(record.Tid);
            }
        }

        repeats?.Seal();
        return new TraceThreads(tids, first, start == long.MaxValue ? 0 : start, repeats, processOf, nProcesses);
    }

    /// <summary>
    /// Replays the trace at <paramref name="path"/> on a fresh machine of <paramref name="spec"/> under the sim engine.
    /// Throws <see cref="KernelConfigException"/> if the machine has fewer CPUs than tasks (TIDs × replicate) or
    /// the options are bad, and <see cref="PerfTraceFormatException"/> on malformed input in strict mode.
    /// </summary>
    public static ReplayResult RunSim(string path, MachineSpec spec, ReplayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(spec);
        options = (options ?? new ReplayOptions()).Validate();
        spec.Validate();
        // Processes (fork, exec) need the sim engine's fork path and an mm per copy.
        bool processes = !options.SharedMm;
        var threads = ScanThreads(path, options.ParseMode, options.InferFaultKinds ? spec.PageSize : 0, processes: processes);
        int nTids = threads.Tids.Count;
        int copies = options.Replicate;
        int tasks = nTids * copies;
        if (tasks > spec.Cpus)
        {
            throw new KernelConfigException("cpus", spec.Cpus,
                $"the trace has {nTids} threads × replicate {copies} = {tasks} tasks; the machine needs at least that many CPUs (one task per CPU)");
        }

        int[] cpus = AssignCpus(threads.Tids, copies, spec, options.CpuMap);

        var harness = new SimHarness(spec, options.Seed, options.Sanitizer);
        var machine = harness.Machine;
        machine.Observer = options.Observer;
        var mms = new List<MmStruct>();
        for (int k = 0; k < (options.SharedMm ? 1 : copies); k++)
        {
            mms.Add(machine.CreateMm());
        }

        var planner = new TracePlanner(spec.PageSize, options.TimeScale, options.AsFastAsPossible) { Kinds = threads.Repeats, Processes = processes };
        var reader = PerfScriptReader.Open(path, options.ParseMode);
        using var feed = new ReplayFeed(reader, planner, threads.Tids, copies, options.SharedMm, name => machine.CreateFile(name, diskBacked: false), options.MaxBufferedOps,
            threads.ProcessOfTid, threads.Processes);

        // One ordering domain per process of each copy; its address space is the first process's mm at the start, a
        // fork's child's once the fork has made it, and a new one at each exec.
        int domains = options.SharedMm ? 1 : copies * feed.Processes;
        var gates = new ReplayGate[domains];
        var domainMm = new MmStruct?[domains];
        var members = Enumerable.Range(0, tasks).ToLookup(feed.DomainOf); // a process without a task of its own has none
        for (int g = 0; g < domains; g++)
        {
            gates[g] = new ReplayGate(feed, members[g].ToArray());
        }

        for (int k = 0; k < mms.Count; k++)
        {
            domainMm[k * feed.Processes] = mms[k];
        }

        feed.SetGates(gates);
        var unusedBarrier = new TaskBarrier(1);
        var counters = new List<TaskCounters>(tasks);
        for (int i = 0; i < tasks; i++)
        {
            int index = i;
            int tid = threads.Tids[i % nTids];
            int domain = feed.DomainOf(i);
            var task = harness.NewTask(cpus[i], domainMm[domain], $"tid{tid}" + (i >= nTids ? $"#{i / nTids}" : string.Empty));
            var c = new TaskCounters();
            counters.Add(c);
            var gate = feed.GateOf(i);
            long at = options.AsFastAsPossible ? 0 : (long)Math.Min((threads.FirstTimeNs[tid] - threads.StartNs) * options.TimeScale, long.MaxValue / 4);
            harness.Spawn(task, at, async t =>
            {
                try
                {
                    var next = await feed.NextAsync(t, index);
                    while (next is { } op)
                    {
                        if (op.Op.Kind != OpKind.Compute)
                        {
                            await gate.WaitTurn(t, index, op);
                            Exec.SwitchMm(t, domainMm[domain]!); // another thread's exec, or the fork that made this process
                        }

                        var mm = t.Mm!;
                        if (op.Op.Kind == OpKind.Mmap)
                        {
                            c.Ops++;
                            var file = op.Op.FileId >= 0 ? feed.Files[op.Op.FileId] : null;
                            await Mmap.DoMmap(t, mm, op.Op.Addr, op.Op.Length, op.Op.Prot, file, op.PageOffset / spec.PageSize);
                            gate.FenceCompleted(op.Seq);
                        }
                        else if (op.Op.Kind == OpKind.Fork)
                        {
                            // kernel_clone of a new process: dup_mmap; its TID's task starts in the copy.
                            c.Ops++;
                            var (child, _) = await Fork.DupMmap(t, mm);
                            int childDomain = feed.ChildDomain(index / nTids, op.Child);
                            domainMm[childDomain] = child ?? throw new InvalidOperationException(
                                $"fork of TID {op.Child} (trace op {op.Seq}) failed: the emulated machine ran out of frames for the copy; give it more memory");
                            gate.FenceCompleted(op.Seq);
                            gates[childDomain].FenceCompleted(op.Seq);
                            gates[childDomain].Notify(t);
                        }
                        else if (op.Op.Kind == OpKind.Exec)
                        {
                            // exec_mmap: the process's next ops run in a new mm, and the old one goes (each process
                            // has its own: no other process runs in it).
                            c.Ops++;
                            var fresh = machine.CreateMm();
                            domainMm[domain] = fresh;
                            await Exec.ExecMmap(t, fresh, lastUser: true);
                            gate.FenceCompleted(op.Seq);
                        }
                        else
                        {
                            await OpExecutor.Execute(t, op.Op, feed.Files, unusedBarrier, c);
                        }

                        next = await feed.NextAsync(t, index);
                        gate.Notify(t);
                    }
                }
                finally
                {
                    gate.Notify(t);
                }
            });
        }

        harness.Run();
        harness.CloseFrameAccounting();
        feed.ReadToEnd();

        // The address spaces at the end: the first process's (after its execs), then each other process's.
        var finalMms = domainMm.OfType<MmStruct>().ToList();
        var report = Describe(path, feed.Stats, planner, threads.Tids, cpus, options, finalMms.Count, new ReplayRunFigures
        {
            EmulatedFaults = machine.VmStat.Faults,
            Sigsegv = counters.Sum(x => x.Sigsegv),
            Sigbus = counters.Sum(x => x.Sigbus),
            EmulatedNs = harness.MaxClock,
            OrderWaits = gates.Sum(g => g.Waits),
            ReadAheadWaits = feed.PullWaits,
            MaxBufferedOps = feed.MaxBuffered,
            EventHash = machine.Events.Hash,
            Vmas = finalMms[0].Tree.Count,
        });
        return new ReplayResult { Harness = harness, Mms = finalMms, PerTask = counters, Tids = threads.Tids, Report = report };
    }

    /// <summary>
    /// replay.json for a finished replay under either engine: what the trace gave (lines, planned ops, skipped lines,
    /// inferred regions), where each task ran, the notes on how the trace was mapped, and the run's figures.
    /// </summary>
    public static ReplayReport Describe(string path, PerfScriptStats stats, TracePlanner planner, IReadOnlyList<int> tids, int[] cpus, ReplayOptions options, int mms, ReplayRunFigures run)
    {
        int nTids = tids.Count;
        int copies = options.Replicate;
        int tasks = cpus.Length;
        var skipped = new Dictionary<string, long>(stats.SkippedByReason);
        AddIfNonZero(skipped, "unmapped", planner.Unmapped);
        AddIfNonZero(skipped, "prot-none", planner.ProtNone);
        AddIfNonZero(skipped, "empty-mapping", planner.EmptyMappings);
        var tidCpu = new Dictionary<string, int>();
        for (int i = 0; i < tasks; i++)
        {
            int tid = tids[i % nTids];
            tidCpu[i < nTids ? tid.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{tid}#{i / nTids}"] = cpus[i];
        }

        var notes = new List<string>(StandardNotes);
        if (planner.Processes)
        {
            notes.Add($"processes from the task events (perf script --show-task-events): {planner.ForkOps} fork(s) of a new process, each a dup_mmap whose child TID runs in the copy " +
                      $"(private pages write-protected on both sides, so the next write faults: do_wp_page), and {planner.ExecOps} exec(s), each a new mm (exec_mmap); a TID without either is a thread of the first process");
        }
        else
        {
            notes.Add(stats.ProcessForks > 0
                ? $"all TIDs of the trace are threads of one process (one mm per copy): its {stats.ProcessForks} fork(s) of a new process and their execs are not replayed here, so the faults of exec'd programs in their own address spaces and of copy-on-write breaks are missing"
                : "all TIDs of the trace are threads of one process (one mm per copy)");
        }

        if (copies > 1)
        {
            notes.Add(options.SharedMm
                ? $"replicate {copies} with shared_mm: one mm; every mmap is emitted once, by copy 0's task of the TID that made it; all copies access the same addresses"
                : $"replicate {copies}: each copy is its own mm (its own address space, same addresses)");
        }

        if (options.AsFastAsPossible)
        {
            notes.Add("as_fast_as_possible: no think time (no Compute ops), every task starts at 0");
        }
        else
        {
            notes.Add($"think time between a task's consecutive ops = trace time difference × time_scale {options.TimeScale.ToString(System.Globalization.CultureInfo.InvariantCulture)}; each task starts at its first trace time");
        }

        if (planner.Kinds is { } kinds)
        {
            notes.Add($"fault kinds: {kinds.ReadsTaken} pages faulted again in their mapping epoch, so their first fault was replayed as a read"
                + (kinds.Untracked > 0 ? $"; {kinds.Untracked} faults beyond the survey's {kinds.Capacity} page-epochs kept the mapping's rule" : string.Empty));
        }
        else
        {
            notes.Add("fault kinds not inferred: every fault in a writable mapping was replayed as a write");
        }

        notes.AddRange(run.Notes);
        return new ReplayReport
        {
            Trace = path,
            LinesRead = stats.LinesRead,
            Ops = new Dictionary<string, long>
            {
                ["mmap"] = planner.MmapOps + planner.InferredMmapOps,
                ["access_read"] = planner.ReadAccesses,
                ["access_write"] = planner.WriteAccesses,
                ["compute"] = planner.ComputeOps,
                ["fork"] = planner.ForkOps,
                ["exec"] = planner.ExecOps,
            },
            Skipped = skipped,
            InferredRegions = planner.Inferred,
            TidCpu = tidCpu,
            Notes = notes,
            Replicate = copies,
            SharedMm = options.SharedMm,
            Tasks = tasks,
            Mms = mms,
            UnreplayedProcessForks = planner.Processes ? 0 : stats.ProcessForks,
            ProcessesWithoutTaskEvents = stats.ProcessForks == 0 && stats.MappingProcesses > 1 ? stats.MappingProcesses : 0,
            Run = run,
        };
    }

    /// <summary>CPU of each task: --cpu-map entries for copy 0 first, then the rest spread over the nodes on free CPUs.</summary>
    public static int[] AssignCpus(IReadOnlyList<int> tids, int copies, MachineSpec spec, IReadOnlyDictionary<int, int>? cpuMap)
    {
        int tasks = tids.Count * copies;
        int[] cpus = new int[tasks];
        Array.Fill(cpus, -1);
        bool[] used = new bool[spec.Cpus];
        if (cpuMap != null)
        {
            foreach (var (tid, cpu) in cpuMap)
            {
                int index = -1;
                for (int i = 0; i < tids.Count; i++)
                {
                    if (tids[i] == tid)
                    {
                        index = i;
                    }
                }

                if (index < 0)
                {
                    throw new KernelConfigException("cpu_map", $"{tid}={cpu}", $"TID {tid} is not in the trace (its TIDs: {string.Join(", ", tids)})");
                }

                if (cpu < 0 || cpu >= spec.Cpus)
                {
                    throw new KernelConfigException("cpu_map", $"{tid}={cpu}", $"CPU must be in 0..{spec.Cpus - 1}");
                }

                if (used[cpu])
                {
                    throw new KernelConfigException("cpu_map", $"{tid}={cpu}", $"CPU {cpu} is already taken (one task per CPU)");
                }

                used[cpu] = true;
                cpus[index] = cpu;
            }
        }

        int next = 0;
        for (int i = 0; i < tasks; i++)
        {
            if (cpus[i] >= 0)
            {
                continue;
            }

            int cpu;
            do
            {
                cpu = SimRun.Spread(next++, spec);
            }
            while (used[cpu]);
            used[cpu] = true;
            cpus[i] = cpu;
        }

        return cpus;
    }

    private static void AddIfNonZero(Dictionary<string, long> into, string key, long value)
    {
        if (value != 0)
        {
            into[key] = value;
        }
    }
}

// Models `distemu replay FILE --engine orleans`: the same planning as the sim engine (TracePlanner over one
// streaming reader), but each task's ops go to its CPU grain in bounded batches. The trace order the sim
// engine's gate keeps is kept here in phases: accesses between two mmaps run concurrently on their CPUs;
// an mmap waits until every CPU has finished what came before it (and starts at the latest of their clocks),
// and nothing after it starts before it completed (at its clock). Memory: one batch being filled and one in
// flight per task, never the trace.
using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Replay;

namespace DistEmu.Silo;

/// <summary>A replay under the orleans engine: the run's merged counters and replay.json's report.</summary>
public sealed record OrleansReplayResult(RunResult Run, ReplayReport Report);

public static class OrleansReplay
{
    /// <summary>Ops per batch sent to a CPU grain (and the most buffered per task while its previous batch runs).</summary>
    public const int DefaultBatchOps = 1024;

    /// <summary>
    /// Replays the trace at <paramref name="path"/> on the machine grains of a new run. Throws
    /// <see cref="KernelConfigException"/> on options the orleans engine does not take (replicate &gt; 1 without shared mm) or a machine with
    /// too few CPUs, and <see cref="PerfTraceFormatException"/> on malformed input in strict mode (before anything runs).
    /// With <paramref name="tracing"/>, the grains record spans of the replayed faults and hand them to the collector during the replay.
    /// </summary>
    public static async Task<OrleansReplayResult> Run(IGrainFactory grains, string path, MachineSpec spec, ReplayOptions options, int batchOps = DefaultBatchOps,
        OrleansTraceCollector? tracing = null)
    {
        options.Validate();
        spec.Validate();
        if (options.Replicate != 1 && !options.SharedMm)
            throw new KernelConfigException("replicate", options.Replicate,
                "the orleans engine replays copies as threads of one process (add --shared-mm); copies with their own address spaces need --engine sim");
        var sw = Stopwatch.StartNew();
        var threads = TraceReplay.ScanThreads(path, options.ParseMode, options.InferFaultKinds ? spec.PageSize : 0);
        int nTids = threads.Tids.Count, copies = options.Replicate;
        int tasks = nTids * copies;
        if (tasks > spec.Cpus)
            throw new KernelConfigException("cpus", spec.Cpus,
                $"the trace has {nTids} threads × replicate {copies} = {tasks} tasks; the machine needs at least that many CPUs (one task per CPU)");
        int[] cpus = TraceReplay.AssignCpus(threads.Tids, copies, spec, options.CpuMap);
        var fileNames = ScanFiles(path, spec.PageSize, options);

        string run = $"replay-{Guid.NewGuid():N}";
        var machine = grains.GetGrain<IMachineGrain>(run);
        await machine.Configure(new RunConfig
        {
            RunId = run,
            MachineJson = MachineJson.Serialize(spec),
            Sanitizer = options.Sanitizer,
            Workload = "trace",
            Seed = options.Seed,
            Tasks = tasks,
            Cpus = cpus,
            FedFiles = fileNames,
            Tracing = tracing?.Attach(grains),
        });
        await machine.Start();
        var cpuGrains = cpus.Select(c => grains.GetGrain<ICpuGrain>(GrainKeys.Cpu(run, spec.NodeOfCpu(c), c))).ToArray();

        // Task copy * nTids + i runs TID i's ops (copy 0 is the trace as recorded), as under sim.
        var tidIndex = new Dictionary<int, int>();
        for (int i = 0; i < nTids; i++)
            tidIndex.Add(threads.Tids[i], i);
        var feed = new Feed(cpuGrains, batchOps);
        for (int task = 0; task < tasks; task++)
        {
            int tid = threads.Tids[task % nTids];
            feed.Floor[task] = options.AsFastAsPossible ? 0 : (long)Math.Min((threads.FirstTimeNs[tid] - threads.StartNs) * options.TimeScale, long.MaxValue / 4);
        }

        var planner = new TracePlanner(spec.PageSize, options.TimeScale, options.AsFastAsPossible) { Kinds = threads.Repeats };
        var scratch = new List<PlannedOp>();
        PerfScriptStats stats;
        using (var reader = PerfScriptReader.Open(path, options.ParseMode))
        {
            while (reader.TryRead(out var record))
            {
                scratch.Clear();
                planner.Plan(record, scratch);
                foreach (var op in scratch)
                {
                    int task = tidIndex[op.Tid];
                    var msg = OpMessages.From(op.Op);
                    if (op.Op.Kind == OpKind.Mmap)
                    {
                        // One address space: the mapping is made once, by copy 0; every copy then uses it.
                        msg.PgOff = op.PageOffset / spec.PageSize;
                        await feed.Fence(task, msg);
                    }
                    else
                    {
                        for (int copy = 0; copy < copies; copy++)
                            await feed.Add(copy * nTids + task, msg);
                    }
                }
            }
            stats = reader.Stats;
        }
        await feed.Drain();
        foreach (var cpu in cpuGrains)
            await cpu.Detach();

        var collected = await machine.Collect();
        tracing?.Complete(collected, grains);
        var tree = await grains.GetGrain<IMmGrain>(GrainKeys.Mm(run, 0)).GetTree(cpus[0]);
        var m = StatsCodec.ToMachine(spec, options.Sanitizer, collected);
        var result = OrleansRun.Result(m, new SimRunOptions { Machine = spec, Workload = "trace", Seed = options.Seed, Sanitizer = options.Sanitizer },
            tasks, collected, sw.Elapsed);
        var report = TraceReplay.Describe(path, stats, planner, threads.Tids, cpus, options, 1, new ReplayRunFigures
        {
            EmulatedFaults = m.VmStat.Faults,
            Sigsegv = collected.Sigsegv,
            Sigbus = collected.Sigbus,
            EmulatedNs = collected.MaxClock,
            OrderWaits = feed.Fences,
            MaxBufferedOps = feed.MaxBuffered,
            Vmas = tree.VmaIds.Length,
            Notes =
            [
                $"orleans engine: each task's ops go to its CPU grain in batches of up to {batchOps}; an mmap is a fence (every CPU finishes the ops before it, the mmap starts at the latest of their clocks, the ops after it start no earlier than its end); order_waits counts the fences",
            ],
        });
        return new OrleansReplayResult(result, report);
    }

    /// <summary>The names of the trace's file mappings by file id, as the planner numbers them (the mm grain creates them up front).</summary>
    private static string[] ScanFiles(string path, int pageSize, ReplayOptions options)
    {
        var planner = new TracePlanner(pageSize, options.TimeScale, asFastAsPossible: true);
        var scratch = new List<PlannedOp>();
        using var reader = PerfScriptReader.Open(path, options.ParseMode);
        while (reader.TryRead(out var record))
        {
            if (!record.IsMmap) continue;
            scratch.Clear();
            planner.Plan(record, scratch);
        }
        return planner.FileNames.ToArray();
    }

    /// <summary>Per-task batches, one in flight per CPU, and the emulated-time floor the trace order sets.</summary>
    private sealed class Feed(ICpuGrain[] cpus, int batchOps)
    {
        private readonly List<OpMessage>[] _buffers = cpus.Select(_ => new List<OpMessage>(batchOps)).ToArray();
        private readonly Task<long>?[] _inFlight = new Task<long>?[cpus.Length];
        private readonly long[] _clocks = new long[cpus.Length];

        /// <summary>Emulated time before which each task's next batch may not start (its first trace time, then the last mmap's end).</summary>
        public long[] Floor { get; } = new long[cpus.Length];

        public long Fences { get; private set; }

        public long MaxBuffered { get; private set; }

        public async Task Add(int task, OpMessage op)
        {
            var buffer = _buffers[task];
            buffer.Add(op);
            MaxBuffered = Math.Max(MaxBuffered, buffer.Count);
            if (buffer.Count >= batchOps)
                await Send(task);
        }

        /// <summary>An mmap: everything before it completes on every CPU, then it runs alone; everything after starts at its end.</summary>
        public async Task Fence(int task, OpMessage mmap)
        {
            Fences++;
            await Drain();
            long start = Math.Max(Floor[task], _clocks.Max());
            long end = await cpus[task].RunBatch([mmap], start);
            _clocks[task] = end;
            for (int i = 0; i < Floor.Length; i++)
                Floor[i] = Math.Max(Floor[i], end);
        }

        /// <summary>Send every buffer and wait for every CPU.</summary>
        public async Task Drain()
        {
            for (int i = 0; i < _buffers.Length; i++)
            {
                if (_buffers[i].Count > 0)
                    await Send(i);
            }
            for (int i = 0; i < _inFlight.Length; i++)
                await Settle(i);
        }

        /// <summary>Wait for the task's batch in flight (one at a time per CPU: RunBatch is not reentrant), then send its buffer.</summary>
        private async Task Send(int task)
        {
            await Settle(task);
            var batch = _buffers[task].ToArray();
            _buffers[task].Clear();
            _inFlight[task] = cpus[task].RunBatch(batch, Floor[task]);
        }

        private async Task Settle(int task)
        {
            if (_inFlight[task] is { } pending)
            {
                _clocks[task] = Math.Max(_clocks[task], await pending);
                _inFlight[task] = null;
            }
        }
    }
}

// Models the knobs of `distemu replay FILE`: how trace time maps to emulated time, how many copies of
// the traced process run, whether the copies share one address space, and which CPU each TID runs on.
using System.Globalization;
using DistEmu.Kernel.Machine;

namespace DistEmu.Replay;

/// <summary>Options of <see cref="TraceReplay.RunSim"/>.</summary>
public sealed record ReplayOptions
{
    /// <summary>Think time between a task's consecutive ops = trace timestamp difference × this. At least 0.</summary>
    public double TimeScale { get; init; } = 1.0;

    /// <summary>No think time at all: no Compute ops, every task starts at emulated time 0.</summary>
    public bool AsFastAsPossible { get; init; }

    /// <summary>Copies of the traced process (1 = the trace as recorded).</summary>
    public int Replicate { get; init; } = 1;

    /// <summary>
    /// With <see cref="Replicate"/> &gt; 1: the copies are threads of one mm (every mapping op is emitted once,
    /// by copy 0's task of the TID that made it; all copies access the same addresses). Default: each copy has
    /// its own mm (same addresses, separate address spaces).
    /// </summary>
    public bool SharedMm { get; init; }

    /// <summary>TID → CPU overrides for copy 0 (<c>--cpu-map tid=cpu,...</c>); other tasks are spread over the nodes.</summary>
    public IReadOnlyDictionary<int, int>? CpuMap { get; init; }

    /// <summary>
    /// Cap on ops read ahead and queued for tasks other than the one reading (memory stays flat in trace length).
    /// A task that needs to read past it sleeps until the queues drain to half. Default 1M ops.
    /// </summary>
    public long MaxBufferedOps { get; init; } = 1 << 20;

    /// <summary>
    /// Infer each fault's kind from the trace (default): a first pass finds the pages that fault again in their mapping
    /// epoch and the replay makes their first fault a read (see <see cref="RepeatedPages"/>). Off: every fault in a
    /// writable mapping is a write, the rule that undercounts by the write faults that follow reads.
    /// </summary>
    public bool InferFaultKinds { get; init; } = true;

    public long Seed { get; init; } = 1;

    public bool Sanitizer { get; init; } = true;

    /// <summary>Telemetry hooks (spans) for the replay, under the sim engine.</summary>
    public DistEmu.Kernel.IKernelObserver? Observer { get; init; }

    /// <summary>Parser mode: strict throws <see cref="PerfTraceFormatException"/> on a malformed line, lenient skips and counts it.</summary>
    public PerfParseMode ParseMode { get; init; } = PerfParseMode.Strict;

    /// <summary>Validates the options; a bad value is a <see cref="KernelConfigException"/> naming the field.</summary>
    public ReplayOptions Validate()
    {
        if (double.IsNaN(TimeScale) || double.IsInfinity(TimeScale) || TimeScale < 0)
        {
            throw new KernelConfigException("time_scale", TimeScale, "must be a finite number >= 0");
        }

        if (Replicate < 1 || Replicate > 65536)
        {
            throw new KernelConfigException("replicate", Replicate, "must be in 1..65536");
        }

        if (MaxBufferedOps < 16)
        {
            throw new KernelConfigException("max_buffered_ops", MaxBufferedOps, "must be at least 16");
        }

        return this;
    }

    /// <summary>Parses <c>tid=cpu,tid=cpu</c> (spaces allowed); a malformed entry is a <see cref="KernelConfigException"/>.</summary>
    public static IReadOnlyDictionary<int, int> ParseCpuMap(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var map = new Dictionary<int, int>();
        foreach (string raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = raw.IndexOf('=');
            if (eq <= 0
                || !int.TryParse(raw.AsSpan(0, eq).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int tid)
                || !int.TryParse(raw.AsSpan(eq + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int cpu))
            {
                throw new KernelConfigException("cpu_map", raw, "expected tid=cpu with non-negative decimal numbers");
            }

            if (!map.TryAdd(tid, cpu))
            {
                throw new KernelConfigException("cpu_map", raw, $"TID {tid} is mapped twice");
            }
        }

        return map;
    }
}

using Orleans;

namespace DistEmu.Abstractions;

// Messages between the grains. Each is a plain serializable carrier; the meaning of every field is the kernel
// core's (emulated ns, frame numbers, VM_FAULT_* and FAULT_FLAG_* bits as integers).

/// <summary>Everything a grain needs to know about the run it belongs to.</summary>
[GenerateSerializer]
public sealed class RunConfig
{
    [Id(0)] public string RunId { get; set; } = "";
    /// <summary>The effective MachineSpec as JSON (the kernel's own type).</summary>
    [Id(1)] public string MachineJson { get; set; } = "";
    [Id(2)] public bool Sanitizer { get; set; } = true;
    [Id(3)] public string Workload { get; set; } = "page-fault1";
    [Id(4)] public Dictionary<string, string> Params { get; set; } = new();
    [Id(5)] public long Seed { get; set; } = 1;
    [Id(6)] public long OpsPerTask { get; set; } = 10_000;
    [Id(7)] public int Tasks { get; set; }
    /// <summary>Stop each task once its clock passes this many emulated ns (0 = no limit).</summary>
    [Id(8)] public long EmulatedNsLimit { get; set; }
    /// <summary>The skew bound in emulated ns (0 = CPUs run lax).</summary>
    [Id(9)] public long QuantumNs { get; set; }
    /// <summary>Explicit op streams by task index (scripted scenarios), instead of the workload's.</summary>
    [Id(10)] public Dictionary<int, OpMessage[]>? Script { get; set; }
    /// <summary>Scripted preemption delays: "cpu/Site" → emulated ns.</summary>
    [Id(11)] public Dictionary<string, long>? Delays { get; set; }
    /// <summary>
    /// Trace replay: the client feeds each CPU its ops in batches (<see cref="ICpuGrain.RunBatch"/>) instead of the CPU
    /// running a workload, and the mm's files are these (a trace's file mappings, by file id) instead of the workload's.
    /// </summary>
    [Id(12)] public string[]? FedFiles { get; set; }
    /// <summary>The CPU of each task (null: spread over the nodes).</summary>
    [Id(13)] public int[]? Cpus { get; set; }
    /// <summary>The machine file's placement map: the silo index of each emulated node, -1 for the even spread (null: no map).</summary>
    [Id(14)] public int[]? NodeSilos { get; set; }
    /// <summary>Record spans (null: no tracing).</summary>
    [Id(15)] public TracingConfig? Tracing { get; set; }
    /// <summary>Historical bugs switched back in, by name (the kernel's BugSwitches.Names), in every grain's kernel.</summary>
    [Id(16)] public string[]? Bugs { get; set; }
}

/// <summary>A CPU's view of the VMA tree (its RCU snapshot): ranges and VMA ids, with the version it was taken at.</summary>
[GenerateSerializer]
public sealed class TreeSnapshot
{
    [Id(0)] public long Version { get; set; }
    [Id(1)] public long[] Starts { get; set; } = [];
    [Id(2)] public long[] Ends { get; set; } = [];
    [Id(3)] public int[] VmaIds { get; set; } = [];
    /// <summary>The emulated node of each VMA's grain (part of its key).</summary>
    [Id(4)] public int[] Nodes { get; set; } = [];
    /// <summary>The file each VMA maps (-1: private anonymous memory, -2: shared anonymous memory).</summary>
    [Id(5)] public int[] Files { get; set; } = [];
    /// <summary>mm_lock_seq when the snapshot was taken: every write section before it had ended.</summary>
    [Id(6)] public long MmLockSeq { get; set; }
}

/// <summary>Who is asking: the emulated CPU (or kernel thread) and its clock.</summary>
[GenerateSerializer]
public struct Caller
{
    [Id(0)] public int Cpu;
    [Id(1)] public int Node;
    [Id(2)] public long Clock;
    /// <summary>How far the caller may run before synchronising (the skew bound), passed on to where its work continues.</summary>
    [Id(3)] public long Horizon;
    /// <summary>With <see cref="Horizon"/>: the rank up to which a CPU at exactly that clock is within it (SyncGrant.HorizonRank).</summary>
    [Id(12)] public int HorizonRank;
    /// <summary>The span the caller is in (trace id, span id; 0: none) and whether its trace is sampled: what the
    /// callee records is its child.</summary>
    [Id(4)] public ulong TraceHi;
    [Id(5)] public ulong TraceLo;
    [Id(6)] public ulong SpanId;
    [Id(7)] public bool Sampled;
    /// <summary>Past <see cref="Horizon"/>, how far the caller's cleared claim lets it run between exact sync points (long.MinValue: not at all).</summary>
    [Id(8)] public long FreeUntil;
    /// <summary>The version of the caller CPU's lookahead claim (-1: none) and whether it is a run (see EmuTask.ClaimVersion).</summary>
    [Id(9)] public long ClaimVersion;
    [Id(10)] public bool InRun;
    /// <summary>The furthest clock the caller's CPU was let run to (EmuTask.Allowed): what its skew is measured from.</summary>
    [Id(11)] public long Allowed;
}

/// <summary>
/// A fault-path request to a VMA grain. Immutable (never deep-cloned), and a class: Orleans reads every call's arguments
/// as objects (looking for cancellation tokens) on both sides, and a struct would be boxed each time.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class FaultRequest
{
    [Id(0)] public Caller Caller;
    [Id(1)] public long Addr;
    /// <summary>FAULT_FLAG_* bits.</summary>
    [Id(2)] public int Flags;
    /// <summary>A frame from the CPU's per-CPU list for the fault to allocate (-1: none); it comes back if unused.</summary>
    [Id(3)] public long Frame;
    /// <summary>On a page walk that finds the entry unusable, go on with the VMA-lock attempt in the same call (after the fault entry cost).</summary>
    [Id(4)] public bool SpeculateFault;
    /// <summary>The cost of the per-CPU list refill that <see cref="Frame"/> came from, due when the fault allocates it (0: none).</summary>
    [Id(5)] public long RefillNs;
    /// <summary>
    /// mm_lock_seq as the caller's snapshot of the tree has it. A VMA grain may not have heard yet that the write section
    /// which created it ended (that news is one-way, and may come after a fault that found the VMA in a newer tree):
    /// the caller's tree shows it did.
    /// </summary>
    [Id(6)] public long MmLockSeq;
}

[GenerateSerializer, Immutable]
public struct FaultReply
{
    [Id(0)] public long Clock;
    /// <summary>The entry a page walk found, or the entry after a handled fault (what the re-executed access will walk to).</summary>
    [Id(1)] public long Pte;
    /// <summary>Whether a VMA-lock attempt ran in this call, and its VmaLockResult.</summary>
    [Id(2)] public bool Attempted;
    [Id(3)] public byte Lock;
    /// <summary>VM_FAULT_* bits.</summary>
    [Id(4)] public int Fault;
    [Id(5)] public bool AccessError;
    /// <summary>The request's frame if the fault did not use it, else -1.</summary>
    [Id(6)] public long UnusedFrame;
    /// <summary>Under mmap_lock: when the callee released it (RETRY/COMPLETED or access error), else -1.</summary>
    [Id(7)] public long MmapReleasedAt;
    /// <summary>The caller's tree snapshot is stale: this VMA no longer covers the address (split, moved). Look up again.</summary>
    [Id(8)] public bool Stale;
    /// <summary>A sanitizer report this call made on the caller's behalf ("S6: …"), for the caller's trace (null: none).</summary>
    [Id(9)] public string? Violation;
    /// <summary>With <see cref="UnusedFrame"/>: the refill cost still due on it.</summary>
    [Id(10)] public long UnusedRefillNs;
}

[GenerateSerializer]
public struct LockFindReply
{
    [Id(0)] public bool Found;
    [Id(1)] public int VmaId;
    [Id(2)] public long Clock;
    /// <summary>The emulated node of the VMA's grain (part of its key).</summary>
    [Id(3)] public int VmaNode;
}

[GenerateSerializer]
public struct ClockReply
{
    [Id(0)] public long Clock;
    [Id(1)] public long Value;
}

/// <summary>A VMA's whole state, to create its grain (mmap) or its upper or lower half (split).</summary>
[GenerateSerializer]
public sealed class VmaInit
{
    [Id(0)] public int MmId;
    [Id(1)] public int VmaId;
    [Id(2)] public long Start;
    [Id(3)] public long End;
    [Id(4)] public byte Flags;
    [Id(5)] public int FileId = -1;
    [Id(6)] public string? FileName;
    [Id(7)] public bool FileDiskBacked;
    [Id(8)] public long PgOff;
    [Id(9)] public bool HasAnonVma;
    [Id(10)] public long VmLockSeq = -1;
    [Id(11)] public long MmLockSeq;
    /// <summary>(address, entry) pairs moved from the VMA it was split from.</summary>
    [Id(12)] public long[] Entries = [];
    /// <summary>CPUs that may cache its translations.</summary>
    [Id(13)] public int[] Cpus = [];
    /// <summary>The emulated node in its grain's key.</summary>
    [Id(14)] public int Node;
}

/// <summary>One op of a task's stream (the kernel's Op), for system calls the mm grain runs.</summary>
[GenerateSerializer]
public struct OpMessage
{
    [Id(0)] public byte Kind;
    [Id(1)] public long Addr;
    [Id(2)] public long Length;
    [Id(3)] public byte Prot;
    [Id(4)] public int Node;
    [Id(5)] public int FileId;
    [Id(6)] public long Ns;
    /// <summary>File offset of an mmap, in pages (vm_pgoff).</summary>
    [Id(7)] public long PgOff;
}

[GenerateSerializer]
public sealed class CollectReply
{
    [Id(0)] public long Clock;
    [Id(1)] public long[] Addrs = [];
    [Id(2)] public long[] Frames = [];
}

[GenerateSerializer]
public sealed class HistMessage
{
    [Id(0)] public long[] Values = [];
    [Id(1)] public long[] Counts = [];
    [Id(2)] public long Count;
    [Id(3)] public long Total;
    [Id(4)] public long Min;
    [Id(5)] public long Max;
}

[GenerateSerializer]
public sealed class LockStatMessage
{
    [Id(0)] public byte Class;
    [Id(1)] public byte Mode;
    [Id(2)] public long Acquisitions;
    [Id(3)] public long Contentions;
    [Id(4)] public HistMessage Wait = new();
    [Id(5)] public HistMessage Hold = new();
}

[GenerateSerializer]
public sealed class ViolationMessage
{
    [Id(0)] public string Invariant = "";
    [Id(1)] public string Policy = "";
    [Id(2)] public string Task = "";
    [Id(3)] public int Cpu;
    [Id(4)] public int? Vma;
    [Id(5)] public long? Address;
    [Id(6)] public long EmulatedNs;
    [Id(7)] public string Message = "";
    [Id(8)] public string[] History = [];
}

/// <summary>A grain's kernel counters, lock statistics, histograms, frame accounting and violations, to be merged.</summary>
[GenerateSerializer]
public sealed class StatsMessage
{
    [Id(0)] public long[] VmStat = [];
    [Id(1)] public List<LockStatMessage> Locks = new();
    [Id(2)] public HistMessage MigrationWait = new();
    [Id(3)] public HistMessage FaultLatency = new();
    [Id(4)] public HistMessage WriterWait = new();
    /// <summary>free, pcp, anon, pagecache, inflight, total.</summary>
    [Id(5)] public long[] Frames = new long[6];
    [Id(6)] public List<ViolationMessage> Violations = new();
    [Id(7)] public Dictionary<string, long> ViolationCounts = new();
    [Id(8)] public long MaxClock;
    [Id(9)] public long Ops;
    [Id(10)] public long Accesses;
    [Id(11)] public long Sigsegv;
    [Id(12)] public long Sigbus;
    [Id(13)] public List<string> Stalled = new();
    /// <summary>Grains whose counters could not be read (their silo was lost): what these stats leave out.</summary>
    [Id(14)] public List<string> Lost = new();
    /// <summary>Under a quantum: the largest clock skew the time keepers measured, in emulated ns.</summary>
    [Id(15)] public long MaxSkewNs;
    // Id 16 held the grain's spans; they now go to the run's ISpanCollector during the run.
    /// <summary>Spans recorded, left out by sampling, and dropped (a batch the collector could not take).</summary>
    [Id(17)] public long[] SpanCounts = new long[3];
    /// <summary>
    /// Grains that answered from an activation that took no part in the run: never used, or, once a silo was lost,
    /// activated anew without the state that went with it. Only a run that failed counts them as lost.
    /// </summary>
    [Id(18)] public List<string> Fresh = new();
    /// <summary>
    /// VMAs whose grain answered from a fresh activation: either it retired (handed its counters to the mm as it went)
    /// or its silo was lost. Only the mm can tell which (<c>IMmGrain.CollectStats</c>).
    /// </summary>
    [Id(19)] public List<int> FreshVmas = new();
    /// <summary>Under a quantum: the CPUs' syncs with their time keepers, and those answered with a grant past the quantum.</summary>
    [Id(20)] public long QuantumSyncs;
    [Id(21)] public long LookaheadGrants;
    /// <summary>The writers' waits split: in mmap_write_lock, and in vma_start_write.</summary>
    [Id(22)] public HistMessage WriterMmapLockWait = new();
    [Id(23)] public HistMessage WriterVmaWait = new();
}

[GenerateSerializer]
public sealed class RunStatus
{
    [Id(0)] public int Tasks;
    [Id(1)] public int Done;
    [Id(2)] public long Faults;
    [Id(3)] public long MaxClock;
    [Id(4)] public string? Error;
    /// <summary>An emulated deadlock the wait-for graph found across grains (its cycle), else null.</summary>
    [Id(5)] public string? Deadlock;
    /// <summary>Ops the CPUs began, summed over the nodes' latest reports: any change is progress.</summary>
    [Id(6)] public long Ops;
}

/// <summary>One node's share of a run's progress, as its CPUs last reported it (<c>INumaNodeGrain.Progress</c>).</summary>
[GenerateSerializer]
public sealed class NodeProgress
{
    [Id(0)] public long Ops;
    [Id(1)] public long Faults;
    [Id(2)] public long MaxClock;
    /// <summary>The node's CPUs whose task has not ended (asked for a stall's message).</summary>
    [Id(3)] public List<CpuProgress> Running = new();
}

/// <summary>How far one CPU's task got, as it last reported to its node.</summary>
[GenerateSerializer]
public sealed record CpuProgress([property: Id(0)] int Cpu, [property: Id(1)] long Ops, [property: Id(2)] long Faults, [property: Id(3)] long Clock)
{
    public override string ToString() => FormattableString.Invariant($"cpu{Cpu}: {Ops} ops, {Faults} faults, clock {Clock} ns");
}

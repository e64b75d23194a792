using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Stats;

namespace DistEmu.Kernel;

/// <summary>
/// The kernel state of one emulated machine: its nodes and frames, folios, swap, address spaces, counters, lock
/// statistics, the sanitizer and the event log. Plain state, no threads, no I/O: an engine drives tasks over it.
/// </summary>
public sealed class EmuMachine
{
    private int _nextVmaId;
    private int _nextMmId;
    private int _nextFileId;

    public MachineSpec Spec { get; }
    public CostModel Cost { get; }
    public FaultPolicy Policy { get; }
    /// <summary>The nodes' allocators, built on first use (under orleans only the node grains use theirs).</summary>
    public NumaNode[] Nodes => _nodes ??= Enumerable.Range(0, Spec.Nodes).Select(i => new NumaNode(i, i * Spec.FramesPerNode, Spec.FramesPerNode)).ToArray();
    private NumaNode[]? _nodes;
    public FrameAccounting Frames { get; } = new();
    public FolioTable Folios { get; }
    public SwapDevice Swap { get; } = new();
    public VmStat VmStat { get; } = new();
    public LockStats LockStats { get; } = new();
    public NsHistogram MigrationWait { get; } = new();
    public NsHistogram FaultLatency { get; } = new();
    public NsHistogram WriterWait { get; } = new();
    /// <summary>The part of each writer's wait spent in mmap_write_lock: behind the faults and writers holding mmap_lock.</summary>
    public NsHistogram WriterMmapLockWait { get; } = new();
    /// <summary>The part spent in vma_start_write: behind the faults holding a read lock of a VMA the writer changes.</summary>
    public NsHistogram WriterVmaWait { get; } = new();

    /// <summary>A writer system call's wait, whole and by what it waited for (the LKML case's question: did a writer of an unrelated range wait?).</summary>
    public void RecordWriterWait(long mmapLockNs, long vmaNs)
    {
        WriterWait.Record(mmapLockNs + vmaNs);
        WriterMmapLockWait.Record(mmapLockNs);
        WriterVmaWait.Record(vmaNs);
    }
    public KernelSanitizer Sanitizer { get; }
    public EventLog Events { get; } = new();
    public IKernelObserver? Observer { get; set; }
    public List<MmStruct> Mms { get; } = new();
    /// <summary>
    /// The CPUs' software TLBs, each built on first use. Kept by CPU rather than in an array of every CPU: under the
    /// orleans engine each grain has an EmuMachine of its own and a CPU grain uses one TLB, so an array sized by the
    /// machine (32 KB on 4,096 CPUs) per grain grew with the machine. Tasks cache their TLB (<see cref="Sched.EmuTask.Tlb"/>),
    /// so this lookup is off the access path.
    /// </summary>
    public Cpu.Tlb Tlb(int cpu)
    {
        if ((uint)cpu >= (uint)Spec.Cpus) throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"the machine has {Spec.Cpus} CPUs");
        _tlbs ??= new Dictionary<int, Cpu.Tlb>();
        if (!_tlbs.TryGetValue(cpu, out var tlb))
            _tlbs[cpu] = tlb = new Cpu.Tlb();
        return tlb;
    }
    private Dictionary<int, Cpu.Tlb>? _tlbs;

    /// <summary>How many CPUs' TLBs this machine has built (a grain's machine builds at most its own CPU's).</summary>
    public int TlbsBuilt => _tlbs?.Count ?? 0;
    /// <summary>Where frames are allocated and freed (the local nodes, or node grains).</summary>
    public Ports.IFramePort FramePort { get; set; }
    /// <summary>Where shootdowns go (the local TLBs, or CPU grains).</summary>
    public Ports.ITlbPort TlbPort { get; set; }

    /// <summary>Test-only fault injection for the regression scenarios of PROTOCOL.md §8.</summary>
    public BugSwitches Bugs { get; } = new();

    /// <param name="ownsFrames">False for a part of a machine (a grain's share of the kernel state): its frame
    /// accounting then starts at zero and records only what passes through it.</param>
    public EmuMachine(MachineSpec spec, bool sanitizer = true, bool ownsFrames = true)
    {
        Spec = spec.Validate();
        Cost = spec.Cost;
        Policy = spec.Policy;
        if (ownsFrames)
        {
            Frames.Total = spec.FramesPerNode * spec.Nodes;
            Frames.Free = Frames.Total;
        }
        _framesPerNode = spec.FramesPerNode;
        ClearPageNs = Cost.PageBandwidthNs(spec.PageSize, 10);
        ClearHugePageNs = Cost.PageBandwidthNs(spec.HugeSize, 10);
        _nodeShift = long.IsPow2(_framesPerNode) ? System.Numerics.BitOperations.Log2((ulong)_framesPerNode) : -1;
        Folios = new FolioTable(this);
        Sanitizer = new KernelSanitizer(this) { Enabled = sanitizer };
        Events.KeepRing = sanitizer;
        FramePort = new Ports.LocalFramePort(this);
        TlbPort = new Ports.LocalTlbPort(this);
    }

    /// <summary>clear_page: writing one page at local distance (every first touch pays it; computed once).</summary>
    public long ClearPageNs { get; }

    /// <summary>clear_huge_page: writing a THP's 2 MiB at local distance.</summary>
    public long ClearHugePageNs { get; }

    /// <summary>Frames per node, kept here: every access and every freed frame asks which node a frame is on.</summary>
    private readonly long _framesPerNode;
    /// <summary>log2 of <see cref="_framesPerNode"/> when it is a power of two (a shift instead of a division), else -1.</summary>
    private readonly int _nodeShift;

    public int NodeOfFrame(long frame) => _nodeShift >= 0 ? (int)(frame >> _nodeShift) : (int)(frame / _framesPerNode);
    public int Distance(int fromNode, int toNode) => Spec.Distance[fromNode][toNode];
    public long PageMask => ~((long)Spec.PageSize - 1);
    public long PageAlign(long addr) => addr & PageMask;

    public MmStruct CreateMm()
    {
        var mm = new MmStruct(this, _nextMmId++);
        Mms.Add(mm);
        return mm;
    }

    public FileObject CreateFile(string name, bool diskBacked) => new(_nextFileId++, name, diskBacked);

    internal int NextVmaId() => _nextVmaId++;

    /// <summary>Return a frame to its node.</summary>
    internal void FreeFrame(long frame)
    {
        Folios.ResetLastCpupid(frame);
        FramePort.Free(frame);
    }

    /// <summary>Return a THP's 512 frames to their node as one block; it is no longer a large folio.</summary>
    internal void FreeHugeFolio(long head)
    {
        Folios.ResetLastCpupid(head);
        Folios.ForgetLarge(head);
        FramePort.FreeHuge(head);
    }
}

/// <summary>Switches that put a historical bug back in, so a test can show the sanitizer catches it (PROTOCOL.md §8).</summary>
public sealed class BugSwitches
{
    /// <summary>§8.3 (Aug 2023): on a VMA-lock fault the arch code calls mmap_read_unlock instead of vma_end_read.</summary>
    public bool MmapUnlockAfterVmaFault { get; set; }
    /// <summary>§8.6 (2024 hugetlb): the fault path keeps using the VMA after a callee dropped its lock.</summary>
    public bool UseVmaAfterRetryUnlock { get; set; }
    /// <summary>The class of §8.1 in another writer: mprotect changes a VMA without vma_start_write.</summary>
    public bool SkipVmaStartWriteInMprotect { get; set; }
    /// <summary>§8.1 (6.4 fork): dup_mmap copies the parent's VMAs and page tables without vma_start_write on them.</summary>
    public bool ForkWithoutVmaWriteLock { get; set; }
    /// <summary>
    /// §8.2 (6.4, fixed by b1f02b95758d): mm_lock_seq read without acquire and bumped without release, so a
    /// vma_start_read can see a write section as ended before its stores to the VMA are visible. Modelled as a window
    /// of <see cref="StaleWindowNs"/> after mmap_write_unlock in which a reader gets the VMA's flags from before the
    /// section: a sequentially consistent emulator has no reordering of its own.
    /// </summary>
    public bool MmLockSeqWithoutOrdering { get; set; }
    /// <summary>How long, with §8.2's bug, a write section's stores to a VMA stay invisible to other CPUs' readers.</summary>
    public long StaleWindowNs { get; set; } = 1000;

    /// <summary>Some bug is switched back in: a lock may be released by a task that does not hold it (§8.3, §8.6).</summary>
    public bool AnySet() => MmapUnlockAfterVmaFault || UseVmaAfterRetryUnlock || SkipVmaStartWriteInMprotect || ForkWithoutVmaWriteLock || MmLockSeqWithoutOrdering;

    /// <summary>The switches by their command-line names (--bug), with the scenario each puts back.</summary>
    public static IReadOnlyDictionary<string, string> Names { get; } = new Dictionary<string, string>
    {
        ["fork-without-vma-write-lock"] = "§8.1 (6.4): dup_mmap copies the parent's VMAs without vma_start_write (S4)",
        ["mprotect-without-vma-start-write"] = "§8.1's class in mprotect: a VMA changed without vma_start_write (S4)",
        ["mmap-unlock-after-vma-fault"] = "§8.3 (Aug 2023): mmap_read_unlock instead of vma_end_read after a VMA-lock fault (S6)",
        ["use-vma-after-retry-unlock"] = "§8.6 (2024 hugetlb): the VMA used after a callee dropped its lock (S5)",
        ["mm-lock-seq-without-acquire-release"] = "§8.2 (6.4): a reader sees a write section end before its VMA stores (S4)",
    };

    /// <summary>Switches whose path exists only under the sim engine (fork; the VMA stores' visibility window).</summary>
    public static IReadOnlySet<string> SimOnly { get; } = new HashSet<string> { "fork-without-vma-write-lock", "mm-lock-seq-without-acquire-release" };

    /// <summary>Switch on the bug named <paramref name="name"/> (one of <see cref="Names"/>).</summary>
    public void Set(string name)
    {
        switch (name)
        {
            case "fork-without-vma-write-lock": ForkWithoutVmaWriteLock = true; break;
            case "mprotect-without-vma-start-write": SkipVmaStartWriteInMprotect = true; break;
            case "mmap-unlock-after-vma-fault": MmapUnlockAfterVmaFault = true; break;
            case "use-vma-after-retry-unlock": UseVmaAfterRetryUnlock = true; break;
            case "mm-lock-seq-without-acquire-release": MmLockSeqWithoutOrdering = true; break;
            default: throw UnknownBug(name);
        }
    }

    private static KernelConfigException UnknownBug(string name) =>
        new("bug", name, "unknown bug switch; expected one of " + string.Join(", ", Names.Keys));
}

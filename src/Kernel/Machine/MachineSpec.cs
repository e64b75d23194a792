namespace DistEmu.Kernel.Machine;

/// <summary>
/// What an emulated machine is: NUMA nodes, CPUs per node, memory per node, the SLIT distance matrix (10 on the
/// diagonal, as ACPI defines it), the base page size, the cost model and the fault policy. Built from a preset
/// or a user file; <see cref="Validate"/> rejects the impossible with a <see cref="KernelConfigException"/>
/// naming the field, before anything is built.
/// </summary>
public sealed record MachineSpec
{
    public string Name { get; init; } = "machine";
    public int Nodes { get; init; } = 2;
    public int CpusPerNode { get; init; } = 4;
    public long MemoryPerNodeBytes { get; init; } = 4L << 30;
    public int[][] Distance { get; init; } = [[10, 20], [20, 10]];
    public int PageSize { get; init; } = 4096;
    public CostModel Cost { get; init; } = CostModel.Default;
    public FaultPolicy Policy { get; init; } = FaultPolicy.Merged;
    /// <summary>
    /// /sys/kernel/mm/transparent_hugepage/enabled for anonymous memory. The default, always, is the upstream Kconfig
    /// default (TRANSPARENT_HUGEPAGE_ALWAYS) and what RHEL and Debian kernels ship; some distributions ship madvise.
    /// </summary>
    public TransparentHugepage Thp { get; init; } = TransparentHugepage.Always;

    public int Cpus => Nodes * CpusPerNode;
    public long MemoryBytes => MemoryPerNodeBytes * Nodes;
    public int PageShift => System.Numerics.BitOperations.Log2((uint)PageSize);
    public long FramesPerNode => MemoryPerNodeBytes / PageSize;

    public int NodeOfCpu(int cpu) => cpu / CpusPerNode;

    /// <summary>Pages in a PMD-mapped THP (HPAGE_PMD_NR): one page-table page's worth, 2 MiB with 4 KiB pages.</summary>
    public int HugePages => 512;
    /// <summary>Bytes in a PMD-mapped THP (HPAGE_PMD_SIZE).</summary>
    public long HugeSize => (long)PageSize * HugePages;

    /// <summary>A SLIT matrix for n nodes: 10 local, <paramref name="remote"/> everywhere else.</summary>
    public static int[][] UniformDistance(int nodes, int remote = 20) =>
        Enumerable.Range(0, nodes).Select(i => Enumerable.Range(0, nodes).Select(j => i == j ? 10 : remote).ToArray()).ToArray();

    public MachineSpec Validate()
    {
        if (Nodes < 1)
            throw new KernelConfigException("nodes", Nodes, "a machine needs at least one NUMA node");
        if (Nodes > 1024)
            throw new KernelConfigException("nodes", Nodes, "at most 1024 nodes are supported");
        if (CpusPerNode < 1)
            throw new KernelConfigException("cpus_per_node", CpusPerNode, "a node needs at least one CPU");
        if ((long)Nodes * CpusPerNode > 65536)
            throw new KernelConfigException("cpus_per_node", CpusPerNode, $"{Nodes} × {CpusPerNode} CPUs exceeds 65536");
        if (PageSize < 1024 || (PageSize & (PageSize - 1)) != 0)
            throw new KernelConfigException("page_size", PageSize, "must be a power of two of at least 1024");
        if (MemoryPerNodeBytes < PageSize * 1024L)
            throw new KernelConfigException("memory_per_node", MemoryPerNodeBytes, "must hold at least 1024 pages");
        if (MemoryPerNodeBytes % PageSize != 0)
            throw new KernelConfigException("memory_per_node", MemoryPerNodeBytes, "must be a multiple of page_size");
        if (FramesPerNode * Nodes >= (1L << 40))
            throw new KernelConfigException("memory_per_node", MemoryPerNodeBytes, "more than 2^40 frames in all");
        if (Distance is null || Distance.Length != Nodes)
            throw new KernelConfigException("distance", Distance?.Length, $"the SLIT matrix must have {Nodes} rows, one per node");
        for (int i = 0; i < Nodes; i++)
        {
            var row = Distance[i];
            if (row is null || row.Length != Nodes)
                throw new KernelConfigException($"distance[{i}]", row, $"the SLIT matrix must be square: expected {Nodes} columns");
            if (row[i] != 10)
                throw new KernelConfigException($"distance[{i}][{i}]", row[i], "the SLIT diagonal must be 10 (local distance)");
            for (int j = 0; j < Nodes; j++)
            {
                if (j != i && (row[j] <= 10 || row[j] > 254))
                    throw new KernelConfigException($"distance[{i}][{j}]", row[j], "a remote SLIT distance must be in 11..254");
            }
        }
        Cost.Validate();
        return this;
    }
}

/// <summary>transparent_hugepage=always|madvise|never (Documentation/admin-guide/mm/transhuge.rst), for anonymous memory.</summary>
public enum TransparentHugepage
{
    /// <summary>Every anonymous VMA may get THPs unless it has VM_NOHUGEPAGE.</summary>
    Always,
    /// <summary>Only VMAs with VM_HUGEPAGE (madvise(MADV_HUGEPAGE)) get THPs.</summary>
    Madvise,
    /// <summary>No THPs at all.</summary>
    Never,
}

public static class TransparentHugepages
{
    public static string Name(this TransparentHugepage t) => t switch
    {
        TransparentHugepage.Always => "always",
        TransparentHugepage.Madvise => "madvise",
        _ => "never",
    };

    public static TransparentHugepage Parse(string s) => s switch
    {
        "always" => TransparentHugepage.Always,
        "madvise" => TransparentHugepage.Madvise,
        "never" => TransparentHugepage.Never,
        _ => throw new KernelConfigException("transparent_hugepage", s, "expected always, madvise or never"),
    };
}

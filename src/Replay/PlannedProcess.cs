// Models one traced process's address space as the trace planner sees it: its mappings and the heap and
// stack it infers from faults outside them. A fork copies it (the child starts with the parent's mappings),
// an exec replaces it with an empty one.
namespace DistEmu.Replay;

/// <summary>The planner's view of one process: mappings plus inferred brk heap and stack growth.</summary>
internal sealed class PlannedProcess
{
    public MappingSet Mappings { get; private init; } = new();

    /// <summary>The first file mapped (after exec, the new program): its writable part ends the data segment.</summary>
    public string? MainExecutable { get; set; }

    public ulong DataEnd { get; set; }

    public InferredRegion? Heap { get; set; }

    public ulong HeapStart { get; set; }

    public ulong HeapEnd { get; set; }

    public bool HasStack { get; set; }

    public ulong StackLow { get; set; }

    public ulong StackHigh { get; set; }

    public InferredRegion? StackGrowth { get; set; }

    /// <summary>
    /// dup_mmap as the trace sees it: the child gets every mapping (its own growth of the heap and stack is reported
    /// as regions of its own), and both sides' regions take a new mapping epoch
    /// from <paramref name="nextEpoch"/> (fork write-protects both, so a page faulted before the fork faults again on
    /// the next write: that later fault is not the write after a read of the same epoch).
    /// </summary>
    public PlannedProcess Fork(Func<long> nextEpoch)
    {
        var child = new PlannedProcess
        {
            MainExecutable = MainExecutable,
            DataEnd = DataEnd,
            HeapStart = HeapStart,
            HeapEnd = HeapEnd,
            HasStack = HasStack,
            StackLow = StackLow,
            StackHigh = StackHigh,
        };
        foreach (var region in Mappings.Regions.ToList())
        {
            Mappings.Map(region with { Epoch = nextEpoch() });
            child.Mappings.Map(region with { Epoch = nextEpoch() });
        }

        return child;
    }
}

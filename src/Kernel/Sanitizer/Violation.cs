namespace DistEmu.Kernel.Sanitizer;

/// <summary>
/// A broken protocol rule, as the sanitizer records it: the invariant id of PROTOCOL.md §7 (S1…S13, L1…L3, A1,
/// DEADLOCK), the policy in force, where (task, CPU, VMA, address), when (emulated ns), what happened in kernel
/// terms, and the events that led to it. <see cref="Site"/> names the kernel path and the check that made the report,
/// without its particulars (e.g. "copy_pte_range, racing fault"): reports from one site are one finding of an
/// exploration, however their CPUs, VMAs and addresses differ.
/// </summary>
public sealed record Violation(
    string Invariant,
    string Policy,
    string Task,
    int Cpu,
    int? Vma,
    long? Address,
    long EmulatedNs,
    string Message,
    IReadOnlyList<string> History,
    string? Site = null)
{
    public override string ToString() =>
        $"{Invariant} violated under {Policy} at {EmulatedNs} ns on {Task} (cpu {Cpu})" +
        (Vma is { } v ? $", vma {v}" : "") + (Address is { } a ? $", address 0x{a:x}" : "") + $": {Message}";
}

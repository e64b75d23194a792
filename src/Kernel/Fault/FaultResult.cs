namespace DistEmu.Kernel.Fault;

/// <summary>How one user fault (one entry into do_user_addr_fault) ended.</summary>
public enum FaultOutcome : byte
{
    /// <summary>The entry is now mapped (or the fault found it already fixed); the access re-executes.</summary>
    Handled,
    /// <summary>SIGSEGV: no VMA covers the address, or the access is not allowed.</summary>
    Sigsegv,
    /// <summary>SIGBUS or OOM.</summary>
    Sigbus,
}

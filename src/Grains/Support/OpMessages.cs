using DistEmu.Abstractions;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Grains.Support;

/// <summary>The kernel's Op and its message form.</summary>
public static class OpMessages
{
    public static OpMessage From(Op op) => new()
    {
        Kind = (byte)op.Kind,
        Addr = op.Addr,
        Length = op.Length,
        Prot = (byte)op.Prot,
        Node = op.Node,
        FileId = op.FileId,
        Ns = op.Ns,
    };

    public static Op To(OpMessage m) => new((OpKind)m.Kind, m.Addr, m.Length, (VmFlags)m.Prot, m.Node, m.FileId, m.Ns);
}

using Orleans;

namespace DistEmu.Abstractions;

/// <summary>
/// The run's trace writer, on the client (an object reference the client makes with
/// IGrainFactory.CreateObjectReference and passes in <see cref="TracingConfig.Collector"/>). The grains hand it their
/// spans during the run, one batch at a time per grain: a grain sends its next batch only once the previous one was
/// taken, so a writer that falls behind slows the grains instead of filling their memory.
/// </summary>
public interface ISpanCollector : IGrainObserver
{
    /// <summary>Spans of any traces, in any order (a trace's fragments come from the grains that recorded them).</summary>
    Task Write(SpanBatch batch);
}

/// <summary>
/// One grain's batch of spans. Immutable: the grain builds it and never touches it again, so a call within the process
/// (the embedded silo's client) need not deep-copy every span.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class SpanBatch
{
    [Id(0)] public SpanMessage[] Spans { get; init; } = [];
}

namespace DistEmu.Client.Tests;

/// <summary>Tests that start OpenTelemetry providers: a provider listens to every ActivitySource of a name in the
/// process (DistEmu, Microsoft.Orleans.*), so they run alone, not beside other runs that would feed their exporters.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OtlpCollection
{
    public const string Name = "OTLP providers";
}

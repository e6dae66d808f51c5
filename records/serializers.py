from rest_framework import serializers

from records.entities import ID_MAX_LENGTH, TEXT_MAX_LENGTH, Record


class RecordSerializer(serializers.Serializer[Record]):
    id = serializers.CharField(read_only=True, max_length=ID_MAX_LENGTH)
    nombre = serializers.CharField(read_only=True, max_length=TEXT_MAX_LENGTH)
    apellido = serializers.CharField(read_only=True, max_length=TEXT_MAX_LENGTH)
    pais = serializers.CharField(read_only=True, max_length=TEXT_MAX_LENGTH)


class ErrorSerializer(serializers.Serializer[dict[str, str]]):
    error = serializers.CharField(read_only=True)
